"""The service wiring: ``serve`` builds the store, metrics server and supervisor from the settings, serves
/metrics over HTTP and stops cleanly when its stop event is set."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from claw.swarm.config import SwarmSettings
from claw.swarm.service import serve
from claw.swarm.store import IncidentStore
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.worker import LocalUnits, command
from tests.swarm.harness import FAST, free_port, wait_ready

pytestmark = pytest.mark.anyio


async def test_serve_exposes_metrics_and_stops_on_its_event(tmp_path):
    port, metrics_port = free_port(), free_port()
    unit = "worker@one.service"
    units = LocalUnits({unit: command(port)}, tmp_path)
    units.start(unit)
    await wait_ready(f"http://127.0.0.1:{port}")
    settings = SwarmSettings.model_validate(
        {
            **FAST,
            "store": {"path": tmp_path / "incidents.db"},
            "listen": f"127.0.0.1:{metrics_port}",
            "workers": [{"name": "one", "unit": unit, "health_url": f"http://127.0.0.1:{port}/healthz"}],
        }
    )
    events: list[asyncio.Event] = []
    task = asyncio.create_task(serve(settings, events.append, units=units))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                await asyncio.sleep(0.1)
                try:
                    text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                except httpx.HTTPError:
                    continue
                ready = {
                    s.labels.get("worker"): s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name == "claw_swarm_worker_ready"
                }
                if ready.get("one") == 1:
                    break
            else:
                pytest.fail("the worker was never reported ready on /metrics")
    finally:
        events[0].set()
        await asyncio.wait_for(task, 10)
        await units.stop_all()
    store = IncidentStore(settings.store.path)
    assert store.recent() == []
    store.close()
