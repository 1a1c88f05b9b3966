"""The swarm tests' harness: worker doubles as real processes under LocalUnits, and the real supervisor (real
probes, SQLite store, metrics, LED client) on short intervals."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.swarm.alerts import Alerts
from claw.swarm.config import SwarmSettings
from claw.swarm.metrics import SwarmMetrics
from claw.swarm.probes import Prober
from claw.swarm.service import alert_channels
from claw.swarm.store import IncidentStore
from claw.swarm.supervisor import Supervisor

from tests.doubles.worker import LocalUnits, command

# Short intervals: the restart deadline these give is 2 * 0.5 + 0.5 + 0.5 + 3 = 5 s (60 s on the appliance).
FAST: dict[str, Any] = {
    "probe_interval": 0.2,
    "probe_timeout": 0.5,
    "hung_after": 2,
    "start_grace": 3.0,
    "restart_timeout": 3.0,
    "backoff": {"initial": 0.2, "factor": 2.0, "max": 1.0},
    "crash_loop": {"restarts": 3, "window": 60},
    "alert_hold": 30,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; the seconds it took. Fails the test after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (await http.get(f"{url}/healthz", timeout=1.0)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the worker double at {url} did not become ready")
            await asyncio.sleep(0.05)


@dataclass
class Swarm:
    settings: SwarmSettings
    units: LocalUnits
    supervisor: Supervisor
    store: IncidentStore
    metrics: SwarmMetrics
    urls: dict[str, str]  # worker name -> base URL

    @staticmethod
    def unit(name: str) -> str:
        return f"worker@{name}.service"

    def incidents(self, name: str) -> list:
        return self.supervisor.states[name].incidents


@contextlib.asynccontextmanager
async def swarm(
    tmp_path: Path, workers: dict[str, bool], *, wait: bool = True, **overrides: Any
) -> AsyncIterator[Swarm]:
    """Run the supervisor over worker doubles (name -> crashes at once?) until the block ends."""
    ports = {name: free_port() for name in workers}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    settings = SwarmSettings.model_validate(
        {
            **FAST,
            "store": {"path": tmp_path / "incidents.db"},
            "workers": [
                {"name": name, "unit": Swarm.unit(name), "health_url": f"{urls[name]}/healthz"} for name in workers
            ],
            **overrides,
        }
    )
    units = LocalUnits({Swarm.unit(n): command(ports[n], crash=crash) for n, crash in workers.items()}, tmp_path)
    for name, crash in workers.items():
        units.start(Swarm.unit(name))
        if wait and not crash:
            await wait_ready(urls[name])
    store = IncidentStore(settings.store.path)
    metrics = SwarmMetrics(list(workers))
    stop = asyncio.Event()
    async with httpx.AsyncClient() as http:
        alerts: Alerts = alert_channels(settings, http)
        supervisor = Supervisor(settings, units, Prober(settings, units, http), store, alerts, metrics)
        task = asyncio.create_task(supervisor.run(stop))
        try:
            yield Swarm(settings, units, supervisor, store, metrics, urls)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await units.stop_all()
            store.close()
