"""collect_report against a fake Prometheus (httpx.MockTransport), a fake Ollama and a real LED daemon."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from claw.leds.client import LedClient
from claw.status import Sources, collect_report, exit_code, status_json
from claw.status.prometheus import PrometheusClient, PrometheusError, parse_point
from claw.status.report import (
    SERIES_QUERIES,
    Alert,
    LastUpdate,
    Leds,
    Model,
    Node,
    Service,
    Version,
    parse_leds,
    parse_series,
    read_last_update,
)

from tests.status.fake_prometheus import NOW, FakePrometheus, alert, hour_of
from tests.status.status_engine import ollama


def collect(prometheus: FakePrometheus | None, **overrides) -> object:
    settings = {
        "prometheus_url": "http://prometheus.test:9090" if prometheus is not None else None,
        "leds_socket": None,
        "last_update_file": None,
        "bom_file": None,
        "prometheus_transport": httpx.MockTransport(prometheus.handle) if prometheus is not None else None,
        **overrides,
    }
    return asyncio.run(collect_report(Sources(**settings), clock=lambda: NOW))


def test_everything_up_is_healthy(prometheus):
    report = collect(prometheus)
    assert report.errors == {}
    assert report.nodes == [Node("claw", "claw", True), Node("crush", "crush", True)]
    assert exit_code(report) == 0
    assert report.healthy and report.problems() == []


def test_a_node_down_is_unhealthy_and_keeps_prometheus_reason(prometheus):
    prometheus.nodes["crush"] = ("crush", False)
    report = collect(prometheus)
    assert Node("crush", "crush", False) in report.nodes
    assert exit_code(report) == 1
    assert report.problems() == ["node crush is down"]
    [crush] = [t for t in report.targets if t.job == "node" and t.node == "crush"]
    assert crush.health == "down" and "no route to host" in crush.error


def test_a_node_target_not_scraped_yet_counts_as_down(prometheus):
    # A target Prometheus has not scraped yet is in /api/v1/targets but has no up sample.
    prometheus.nodes["crush2"] = ("crush", False)
    original_up = prometheus._up
    prometheus._up = lambda: [s for s in original_up() if s["metric"]["node"] != "crush2"]
    report = collect(prometheus)
    assert Node("crush2", "crush", False) in report.nodes
    assert exit_code(report) == 1


def test_no_node_targets_is_unhealthy(prometheus):
    prometheus.nodes = {}
    report = collect(prometheus)
    assert report.nodes == []
    assert exit_code(report) == 1
    assert "no node targets" in report.problems()[0]


def test_critical_alert_firing_is_unhealthy_warning_and_pending_are_not(prometheus):
    prometheus.alerts = [
        alert("DiskNearlyFull", "warning", "/ on claw is nearly full", node="claw"),
        alert("EngineDown", "critical", "Inference engine ollama is down", state="pending", node="crush"),
    ]
    report = collect(prometheus)
    assert [a.name for a in report.alerts] == ["DiskNearlyFull"]  # pending is not firing
    assert exit_code(report) == 0

    prometheus.alerts.append(alert("OpenClawDown", "critical", "OpenClaw gateway is down", node="claw"))
    report = collect(prometheus)
    assert report.alerts[0] == Alert(
        "OpenClawDown", "critical", "OpenClaw gateway is down", node="claw", active_at="2025-11-21T12:55:00.123456789Z"
    )
    assert exit_code(report) == 1
    assert report.problems() == ["critical alert OpenClawDown: OpenClaw gateway is down"]


def test_prometheus_unreachable_is_reported_not_raised(closed_port_url):
    report = asyncio.run(
        collect_report(Sources(prometheus_url=closed_port_url, leds_socket=None, last_update_file=None))
    )
    assert report.errors["prometheus"].startswith(f"unavailable: cannot connect to {closed_port_url}")
    for section in ("nodes", "services", "versions", "alerts", "models", "series.power_watts"):
        assert report.errors[section].startswith("unavailable: "), section
    assert report.nodes == [] and report.series == {key: [] for key in SERIES_QUERIES}
    assert exit_code(report) == 1
    assert report.problems() == [f"Prometheus {report.errors['prometheus']}"]


def test_prometheus_that_hangs_costs_one_timeout():
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async def main() -> object:
        sources = Sources(
            prometheus_url="http://prometheus.test:9090",
            leds_socket=None,
            last_update_file=None,
            timeout=0.2,
            prometheus_transport=_TimeoutTransport(hang, 0.2),
        )
        return await asyncio.wait_for(collect_report(sources), 3)

    report = asyncio.run(main())
    assert "within 0.2 s" in report.errors["prometheus"]


class _TimeoutTransport(httpx.AsyncBaseTransport):
    """MockTransport ignores timeouts; this one raises httpx's ReadTimeout as a real socket would."""

    def __init__(self, handler, seconds: float) -> None:
        self.handler, self.seconds = handler, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(self.handler(request), self.seconds)
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None


def test_one_failing_section_costs_only_that_section(prometheus):
    prometheus.failing["/api/v1/alerts"] = (503, {"status": "error", "errorType": "unavailable", "error": "rules"})
    report = collect(prometheus)
    assert report.errors == {"alerts": "unavailable: GET /api/v1/alerts: HTTP 503 unavailable: rules"}
    assert len(report.nodes) == 2 and report.versions
    assert exit_code(report) == 1  # cannot tell whether a critical alert fires
    assert "prometheus" not in report.errors


def test_a_query_prometheus_rejects_is_an_error_of_its_section(prometheus):
    prometheus.failing["/api/v1/query_range"] = (400, {"status": "error", "errorType": "bad_data", "error": "parse"})
    report = collect(prometheus)
    assert report.errors["series.power_watts"] == "unavailable: GET /api/v1/query_range: HTTP 400 bad_data: parse"
    assert exit_code(report) == 0  # series are informative, not a health gate


def test_services_merge_both_views(prometheus):
    prometheus.claw_units["threadweaver.service"] = False
    prometheus.node_units.append(("claw", "threadweaver.service", "failed"))
    report = collect(prometheus)
    assert Service("claw", "threadweaver.service", "failed", False) in report.services
    assert Service("claw", "openclaw.service", "active", True) in report.services
    assert Service("crush", "ollama.service", "active", True) in report.services
    assert Service("claw", "claw-leds.service", "active", True) in report.services


def test_versions_from_the_build_info_metrics(prometheus):
    report = collect(prometheus)
    assert report.versions == [
        Version("prometheus", "", "2.42.0+ds"),
        Version("claw", "claw", "0.4.0"),
        Version("node_exporter", "crush", "1.5.0"),
        Version("ollama", "crush", "0.12.6"),
    ]


def test_series_parsed_as_time_value_pairs(prometheus):
    prometheus.series["gpu_load"] = hour_of([0.25, float("nan"), 0.5])
    report = collect(prometheus)
    assert report.series["power_watts"] == [(NOW - 120, 14.0), (NOW - 60, 15.5), (NOW, 21.25)]
    assert report.series["gpu_load"] == [(NOW - 120, 0.25), (NOW, 0.5)]  # NaN dropped
    assert report.series["tokens_per_s"] == []
    queries = {r.url.params["query"]: r.url.params for r in prometheus.requests if r.url.path.endswith("query_range")}
    assert set(queries) == set(SERIES_QUERIES.values())
    params = queries[SERIES_QUERIES["temperature_c"]]
    assert float(params["end"]) == NOW and float(params["start"]) == NOW - 3600 and params["step"] == "60"


@pytest.mark.parametrize(
    ("pair", "point"),
    [
        ([1763730000.5, "4.5"], (1763730000.5, 4.5)),
        ([1763730000, "1e+01"], (1763730000.0, 10.0)),
        ([1763730000, "NaN"], None),
        ([1763730000, "+Inf"], None),
        (["x", "1"], None),
        ([1], None),
        (None, None),
    ],
)
def test_parse_point(pair, point):
    assert parse_point(pair) == point


def test_parse_series_takes_the_first_series_and_skips_junk():
    matrix = [{"metric": {}, "values": [[1, "2"], [2, "NaN"], "junk", [3, "4"]]}, {"metric": {"x": "y"}, "values": []}]
    assert parse_series(matrix) == [(1.0, 2.0), (3.0, 4.0)]
    assert parse_series([]) == []


def test_models_from_prometheus_without_an_engine(prometheus):
    prometheus.loaded_models = ["qwen3:4b", "llama3.2:1b"]
    report = collect(prometheus)
    assert report.models == [Model("llama3.2:1b", True), Model("qwen3:4b", True)]


def test_models_from_the_engine_served_and_loaded(prometheus):
    report = collect(prometheus, engine_url="http://crush.test:11434", engine_transport=httpx.MockTransport(ollama))
    assert report.models == [Model("qwen3:4b", True), Model("llama3.2:1b", False)]
    assert "engine" not in report.errors


def test_engine_down_falls_back_to_prometheus(prometheus, closed_port_url):
    report = collect(prometheus, engine_url=closed_port_url)
    assert report.errors["engine"].startswith("unavailable: nothing listens on")
    assert report.models == [Model("qwen3:4b", True)]
    assert exit_code(report) == 0  # the engine is optional; EngineDown would fire as an alert


def test_engine_alone_without_prometheus(closed_port_url):
    report = collect(None, engine_url="http://crush.test:11434", engine_transport=httpx.MockTransport(ollama))
    assert report.models == [Model("qwen3:4b", True), Model("llama3.2:1b", False)]
    assert report.nodes == [] and exit_code(report) == 1


def test_leds_from_the_daemon(prometheus, led_socket):
    report = collect(prometheus, leds_socket=led_socket)
    assert report.leds == Leds("off", "no layers: the strip is dark")
    asyncio.run(LedClient(led_socket).signal("prometheus", "alert_firing", detail="NodeDown"))
    report = collect(prometheus, leds_socket=led_socket)
    assert report.leds == Leds("alert_firing", "NodeDown")


def test_leds_unavailable_is_an_error_not_a_failure(prometheus, tmp_path):
    report = collect(prometheus, leds_socket=tmp_path / "missing.sock")
    assert report.leds is None
    assert report.errors["leds"].startswith("unavailable: LED daemon unavailable at")
    assert exit_code(report) == 0


def test_parse_leds_without_detail():
    winner = {"key": "manual", "level": "manual", "state": None, "pattern": "rainbow", "detail": ""}
    assert parse_leds({"winner": winner}) == Leds("rainbow", "manual layer manual")


def test_last_update_present_absent_and_broken(prometheus, last_update, tmp_path):
    report = collect(prometheus, last_update_file=last_update)
    assert report.last_update == LastUpdate("2025-11-20T18:04:11+00:00", "playbooks/update.yml", "0.4.0")
    report = collect(prometheus, last_update_file=tmp_path / "absent.json")
    assert report.last_update is None and "last_update" not in report.errors
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    report = collect(prometheus, last_update_file=broken)
    assert report.last_update is None and report.errors["last_update"].startswith("unavailable: ")
    assert exit_code(report) == 0


def test_read_last_update_rejects_a_record_without_time(tmp_path):
    path = tmp_path / "record.json"
    path.write_text('{"playbook": "site.yml"}', encoding="utf-8")
    with pytest.raises(ValueError, match="'time'"):
        read_last_update(path)
    assert read_last_update(Path(tmp_path / "none.json")) is None


def test_status_json_shape(prometheus, led_socket, last_update):
    prometheus.alerts = [alert("NodeDown", "critical", "Node crush is down", node="crush")]
    report = collect(prometheus, leds_socket=led_socket, last_update_file=last_update)
    data = json.loads(report.to_json())
    assert data == status_json(report)
    for key in ("nodes", "models", "leds", "alerts", "series", "services", "versions", "last_update", "errors"):
        assert key in data, key
    assert data["nodes"] == [
        {"name": "claw", "role": "claw", "up": True},
        {"name": "crush", "role": "crush", "up": True},
    ]
    assert data["models"] == [{"name": "qwen3:4b", "loaded": True}]
    assert data["leds"] == {"state": "off", "detail": "no layers: the strip is dark"}
    assert data["alerts"] == [{"name": "NodeDown", "severity": "critical", "summary": "Node crush is down"}]
    assert set(data["series"]) == {"power_watts", "gpu_load", "tokens_per_s", "temperature_c"}
    assert data["series"]["power_watts"] == [[int(NOW) - 120, 14.0], [int(NOW) - 60, 15.5], [int(NOW), 21.25]]
    assert all(isinstance(ts, int) for ts, _ in data["series"]["temperature_c"])
    assert data["last_update"] == {
        "time": "2025-11-20T18:04:11+00:00",
        "playbook": "playbooks/update.yml",
        "version": "0.4.0",
    }
    assert data["services"][0] == {"node": "claw", "unit": "claw-leds.service", "state": "active", "active": True}
    assert {"component": "ollama", "node": "crush", "version": "0.12.6"} in data["versions"]
    assert data["errors"] == {}
    assert data["healthy"] is False


def test_status_json_when_everything_is_unavailable(closed_port_url, tmp_path):
    sources = Sources(prometheus_url=closed_port_url, leds_socket=tmp_path / "no.sock", last_update_file=None)
    data = status_json(asyncio.run(collect_report(sources)))
    assert data["nodes"] == [] and data["models"] == [] and data["alerts"] == []
    assert data["leds"] is None and data["last_update"] is None
    assert data["series"] == {"power_watts": [], "gpu_load": [], "tokens_per_s": [], "temperature_c": []}
    assert set(data["errors"]) >= {"prometheus", "leds", "nodes", "alerts"}
    json.dumps(data)


def test_prometheus_client_rejects_answers_that_are_not_the_api():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query":
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}})
        return httpx.Response(200, text="<html>a proxy login page</html>")

    async def main() -> None:
        async with PrometheusClient("http://p.test", transport=httpx.MockTransport(handler)) as prom:
            with pytest.raises(PrometheusError, match="expected a vector, got matrix"):
                await prom.query("up")
            with pytest.raises(PrometheusError, match="not a Prometheus API answer"):
                await prom.alerts()

    asyncio.run(main())
