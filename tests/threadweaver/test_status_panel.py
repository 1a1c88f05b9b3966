"""The console's status panel: claw.status's report over the API, cached, 404 when not configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from claw.status import Sources
from claw.threadweaver.__main__ import build_console, status_panel
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings, StatusConfig
from claw.threadweaver.status_panel import StatusPanel

from tests.status.fake_prometheus import FakePrometheus, alert
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def client_for(tmp_path, monkeypatch, panel: StatusPanel | None) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    settings = Settings.model_validate(
        {"port": 8600, "store": {"path": str(tmp_path / "threads.db"), "key_file": None}}
    )
    console = build_console(settings)
    app = create_app(console, sessions(), panel)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http
    console.store.close()


def panel_for(prometheus: FakePrometheus, clock: Clock) -> StatusPanel:
    transport = httpx.MockTransport(prometheus.handle)
    sources = Sources(
        prometheus_url="http://prometheus.test",
        engine_url=None,
        leds_socket=None,
        last_update_file=None,
        prometheus_transport=transport,
    )
    return StatusPanel(sources, cache_s=10, clock=clock)


async def test_status_shows_nodes_models_alerts_and_series(tmp_path, monkeypatch):
    prometheus = FakePrometheus(nodes={"claw": ("claw", True), "crush": ("crush", False)})
    prometheus.alerts.append(alert("EngineDown", "critical", "the engine on crush is down", node="crush"))
    async with client_for(tmp_path, monkeypatch, panel_for(prometheus, Clock())) as http:
        response = await http.get("/status")
        assert response.status_code == 200
        body = response.json()
        assert {(n["name"], n["up"]) for n in body["nodes"]} == {("claw", True), ("crush", False)}
        engine_down = {"name": "EngineDown", "severity": "critical", "summary": "the engine on crush is down"}
        assert engine_down in body["alerts"]
        assert [m["name"] for m in body["models"]] == ["qwen3:4b"]
        assert [point[1] for point in body["series"]["power_watts"]] == [14.0, 15.5, 21.25]
        assert body["leds"] is None
        anonymous = httpx.AsyncClient(transport=http._transport, base_url="http://tw")
        assert (await anonymous.get("/status")).status_code == 401


async def test_status_is_cached_so_open_tabs_do_not_flood_prometheus(tmp_path, monkeypatch):
    prometheus, clock = FakePrometheus(), Clock()
    async with client_for(tmp_path, monkeypatch, panel_for(prometheus, clock)) as http:
        await http.get("/status")
        asked = len(prometheus.requests)
        assert asked > 0
        await http.get("/status")
        assert len(prometheus.requests) == asked, "a second look within the cache time asked Prometheus again"
        prometheus.nodes["crush"] = ("crush", False)
        clock.now += 11
        body = (await http.get("/status")).json()
        assert len(prometheus.requests) > asked
        assert ("crush", False) in {(n["name"], n["up"]) for n in body["nodes"]}


async def test_prometheus_down_still_answers_with_the_reason(tmp_path, monkeypatch):
    sources = Sources(prometheus_url="http://127.0.0.1:9", engine_url=None, leds_socket=None, last_update_file=None)
    async with client_for(tmp_path, monkeypatch, StatusPanel(sources, cache_s=0)) as http:
        response = await http.get("/status")
        assert response.status_code == 200
        assert response.json()["nodes"] == []
        assert any("unavailable" in reason for reason in response.json()["errors"].values())


async def test_no_status_config_is_404(tmp_path, monkeypatch):
    async with client_for(tmp_path, monkeypatch, None) as http:
        response = await http.get("/status")
        assert response.status_code == 404 and "status" in response.json()["error"]["message"]


def test_status_config_builds_the_panel():
    assert status_panel(None) is None
    panel = status_panel(StatusConfig(prometheus_url="http://claw:9090", engine_url="http://crush:8080", cache_s=3))
    assert panel is not None and panel.cache_s == 3
    assert (panel.sources.prometheus_url, panel.sources.engine_url) == ("http://claw:9090", "http://crush:8080")
