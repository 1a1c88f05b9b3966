"""One probe of one worker: liveness (unit active, main process not stopped), readiness (health URL answers in
time) and, when due, the synthetic turn. A probe never raises: what failed is its :class:`Failure`.

Liveness reads ``/proc/<MainPID>/stat``: a SIGSTOPped process is state ``T`` (``t`` when traced) and answers
nothing while systemd still calls its unit active, which is how a worker once hung silently for two days.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from claw.swarm.config import SwarmSettings, TurnSettings, WorkerSettings
from claw.swarm.units import UnitError, UnitManager, UnitStatus

# Symptom kinds (a Prometheus label and the first word of an incident's symptom).
SYMPTOMS = ("not_active", "stopped", "zombie", "not_ready", "turn_failed", "crash_loop")
STOPPED_STATES = frozenset("Tt")
HTTP_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError)


@dataclass(frozen=True)
class Failure:
    kind: str  # one of SYMPTOMS
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass(frozen=True)
class ProbeResult:
    up: bool | None  # liveness; None when the unit manager could not say
    ready: bool
    failure: Failure | None
    duration_s: float
    turn_passed: bool = False


def process_state(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The one-letter state of a process (R, S, D, T, Z, ...), or None when it is gone or unreadable."""
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    state = text[text.rfind(")") + 1 :].split(maxsplit=1)
    return state[0] if state else None


def liveness_failure(status: UnitStatus, proc: Path = Path("/proc")) -> Failure | None:
    if not status.active:
        return Failure(
            "not_active", f"unit is {status.active_state}" + (f" ({status.sub_state})" if status.sub_state else "")
        )
    if status.main_pid <= 0:
        return None  # a Type=oneshot/forking unit without a main PID: readiness decides
    state = process_state(status.main_pid, proc)
    if state in STOPPED_STATES:
        return Failure("stopped", f"main process {status.main_pid} is stopped (state {state}): it answers nothing")
    if state == "Z":
        return Failure("zombie", f"main process {status.main_pid} is a zombie")
    return None


class Prober:
    def __init__(
        self,
        settings: SwarmSettings,
        units: UnitManager,
        http: httpx.AsyncClient,
        proc: Path = Path("/proc"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.units = units
        self.http = http
        self.proc = proc
        self.clock = clock

    async def probe(self, worker: WorkerSettings, *, turn_due: bool) -> ProbeResult:
        started = self.clock()
        (up, dead), not_ready = await asyncio.gather(self._liveness(worker), self._readiness(worker))
        failure = dead or not_ready
        turn_passed = False
        if failure is None and turn_due and worker.turn is not None:
            failure = await self._turn(worker.turn)
            turn_passed = failure is None
        return ProbeResult(up, not_ready is None, failure, self.clock() - started, turn_passed)

    async def _liveness(self, worker: WorkerSettings) -> tuple[bool | None, Failure | None]:
        """(up, why not); up is None when the unit manager could not say (that alone is no failure)."""
        try:
            status = await asyncio.wait_for(self.units.status(worker.unit), self.settings.probe_timeout)
        except (UnitError, asyncio.TimeoutError):
            return None, None
        failure = liveness_failure(status, self.proc)
        return failure is None, failure

    async def _readiness(self, worker: WorkerSettings) -> Failure | None:
        timeout = self.settings.probe_timeout
        error = await self._request("GET", worker.health_url, timeout)
        return None if error is None else Failure("not_ready", f"GET {worker.health_url}: {error}")

    async def _turn(self, turn: TurnSettings) -> Failure | None:
        error = await self._request(turn.method, turn.url, turn.timeout, turn.body, turn.expect)
        return None if error is None else Failure("turn_failed", f"{turn.method} {turn.url}: {error}")

    async def _request(
        self, method: str, url: str, timeout: float, body: object = None, expect: str | None = None
    ) -> str | None:
        """None when ``url`` answered 2xx (containing ``expect``) within ``timeout``, else why not."""
        try:
            response = await asyncio.wait_for(self.http.request(method, url, json=body, timeout=timeout), timeout)
        except asyncio.TimeoutError:
            return f"no answer within {timeout:g} s"
        except HTTP_ERRORS as err:
            if isinstance(err, httpx.TimeoutException):
                return f"no answer within {timeout:g} s"
            return f"{type(err).__name__}: {err}".rstrip(": ")
        if not 200 <= response.status_code < 300:
            return f"HTTP {response.status_code}"
        if expect is not None and expect not in response.text:
            return f"the answer does not contain {expect!r}"
        return None
