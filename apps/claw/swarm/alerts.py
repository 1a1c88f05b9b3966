"""Where an incident is shown: the LED strip (through the LED daemon, as the status watcher signals) and the
console (a JSON POST to a configured URL: ThreadWeaver's ``POST /notifications`` with a gateway client's key, or
any hook).

Each worker is its own LED source, ``swarm:<worker>``, so one worker's recovery never clears another's alert. An
incident signals ``alert`` for ``alert_hold`` seconds (a person who looks later still sees it happened); a crash
loop signals ``service_down``, refreshed each probe for as long as it lasts. Neither channel ever raises: an
unavailable daemon or console is logged, and the supervisor goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Protocol

import httpx

from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.swarm.store import Incident

log = logging.getLogger("claw.swarm.alerts")

LED_SOURCE_PREFIX = "swarm:"
INCIDENT_STATE = "alert"
CRASH_LOOP_STATE = "service_down"
MAX_DETAIL = 200


def led_source(worker: str) -> str:
    return f"{LED_SOURCE_PREFIX}{worker}"


def console_payload(incident: Incident) -> dict[str, object]:
    """What the console hook receives (documented in docs/swarm.md)."""
    return {"source": "claw-swarm", **incident.as_dict()}


class Alert(Protocol):
    async def notify(self, incident: Incident, ttl: float) -> None:
        """A new incident, shown for ``ttl`` seconds where the channel can expire it."""

    async def refresh(self, incident: Incident, ttl: float) -> None:
        """The same incident still holds (a crash loop): keep it shown, without notifying anew."""

    async def clear(self, worker: str) -> None:
        """The worker recovered."""


class LedAlert:
    def __init__(self, socket: Path, timeout: float = 2.0) -> None:
        self.client = LedClient(socket, timeout=timeout)

    async def notify(self, incident: Incident, ttl: float) -> None:
        state = CRASH_LOOP_STATE if incident.kind == "crash_loop" else INCIDENT_STATE
        detail = f"{incident.kind}: {incident.action}"[:MAX_DETAIL]
        await self._send(self.client.signal(led_source(incident.worker), state, ttl=ttl, detail=detail))

    async def refresh(self, incident: Incident, ttl: float) -> None:
        await self.notify(incident, ttl)

    async def clear(self, worker: str) -> None:
        await self._send(self.client.unsignal(led_source(worker)))

    @staticmethod
    async def _send(request: Awaitable[object]) -> None:
        try:
            await request
        except LedDaemonUnavailable as err:
            log.warning("%s", err)
        except LedRequestError as err:
            log.error("LED daemon refused the swarm's signal: %s", err)


class ConsoleHook:
    """POST each new incident as JSON (see :func:`console_payload`); refreshes and recoveries send nothing."""

    def __init__(self, url: str, http: httpx.AsyncClient, timeout: float = 5.0, key: str | None = None) -> None:
        self.url = url
        self.http = http
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def notify(self, incident: Incident, ttl: float) -> None:
        try:
            response = await self.http.post(
                self.url, json=console_payload(incident), headers=self.headers, timeout=self.timeout
            )
            response.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            log.warning("console notification to %s failed: %s", self.url, err)

    async def refresh(self, incident: Incident, ttl: float) -> None:
        return None

    async def clear(self, worker: str) -> None:
        return None


class Alerts:
    """Every configured channel at once."""

    def __init__(self, channels: list[Alert]) -> None:
        self.channels = channels

    async def notify(self, incident: Incident, ttl: float) -> None:
        for channel in self.channels:
            await channel.notify(incident, ttl)

    async def refresh(self, incident: Incident, ttl: float) -> None:
        for channel in self.channels:
            await channel.refresh(incident, ttl)

    async def clear(self, worker: str) -> None:
        for channel in self.channels:
            await channel.clear(worker)
