"""`claw status` against a real Prometheus scraping a real claw exporter (in-process) and a node that is down.

Uses the ``prometheus`` binary of Debian's package that ``make pytest`` unpacks into .cache/tools (or one on
PATH); skipped without it. Scrapes run every 2 s and rules every second, so the whole module takes ~6 s.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from claw import __version__
from claw.exporters.claw import ClawCollector, ClawExporterSettings
from claw.status import Node, Sources, collect_report, exit_code, status_json
from claw.status.render import render_text
from prometheus_client import CollectorRegistry, start_http_server

REPO = Path(__file__).resolve().parents[2]
PI5_ROOT = REPO / "tests" / "fixtures" / "pi5_sysfs"
UNITS = ("openclaw.service", "threadweaver.service")
RULES = {
    "groups": [
        {
            "name": "test",
            "rules": [
                {
                    "alert": "NodeDown",
                    "expr": 'up{job="node"} == 0',  # the appliance's rule without its 2 minutes of "for"
                    "labels": {"severity": "critical"},
                    "annotations": {"summary": "Node {{ $labels.node }} is down"},
                }
            ],
        }
    ]
}


def find_prometheus() -> str | None:
    candidate = REPO / ".cache/tools/usr/bin/prometheus"
    return shutil.which("prometheus") or (str(candidate) if candidate.is_file() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory) -> Iterator[str]:
    binary = find_prometheus()
    if binary is None:
        pytest.skip("prometheus not found (make pytest unpacks Debian's 'prometheus' package into .cache/tools)")
    tmp = tmp_path_factory.mktemp("prometheus")
    settings = ClawExporterSettings(sysfs_root=PI5_ROOT, gateway_url=None, leds_socket=None, units=UNITS)
    collector = ClawCollector(settings, runner=lambda argv: "active\nfailed\n")
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    exporter = f"127.0.0.1:{server.server_address[1]}"
    down = f"127.0.0.1:{free_port()}"
    config = {
        # Scrapes time out after 2 s, not 1 s: a loaded CI machine can be slow to answer from this process.
        "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "node",  # the claw exporter stands in for claw's node_exporter: up is what counts
                "static_configs": [
                    {"targets": [exporter], "labels": {"node": "claw", "role": "claw"}},
                    {"targets": [down], "labels": {"node": "crush", "role": "crush"}},
                ],
                # ... whose claw_ series must not count twice
                "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": "claw_.*", "action": "drop"}],
            },
            {"job_name": "claw", "static_configs": [{"targets": [exporter], "labels": {"node": "claw"}}]},
        ],
    }
    (tmp / "rules.yml").write_text(yaml.safe_dump(RULES), encoding="utf-8")
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        binary,
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:

        def firing_and_scraped() -> bool:
            alerts = httpx.get(f"{url}/api/v1/alerts", timeout=1)
            build = httpx.get(f"{url}/api/v1/query", params={"query": "claw_build_info"}, timeout=1)
            claw_up = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="node",node="claw"} == 1'}, timeout=1)
            if any(r.status_code != 200 for r in (alerts, build, claw_up)):
                return False  # 503 "Service Unavailable" until Prometheus has loaded its TSDB and rules
            firing = any(a["state"] == "firing" for a in alerts.json()["data"]["alerts"])
            return firing and bool(build.json()["data"]["result"]) and bool(claw_up.json()["data"]["result"])

        wait_for(firing_and_scraped, 30, "Prometheus to scrape the exporter and fire NodeDown")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
        collector.close()


def test_report_from_a_real_prometheus(real_prometheus):
    report = asyncio.run(
        collect_report(Sources(prometheus_url=real_prometheus, leds_socket=None, last_update_file=None))
    )
    assert report.nodes == [Node("claw", "claw", True), Node("crush", "crush", False)]
    [crush] = [t for t in report.targets if t.node == "crush"]
    assert "connection refused" in crush.error
    assert [(a.name, a.severity, a.summary) for a in report.alerts] == [("NodeDown", "critical", "Node crush is down")]
    assert exit_code(report) == 1
    assert {(s.unit, s.active) for s in report.services} == {
        ("openclaw.service", True),
        ("threadweaver.service", False),
    }
    assert {(v.component, v.node, v.version) for v in report.versions} >= {("claw", "claw", __version__)}
    # The configured idle figures (5 W claw + 9 W crush) and the Pi 5 fixture's hottest zone.
    assert report.series["power_watts"][-1][1] == pytest.approx(14.0)
    assert report.series["temperature_c"][-1][1] == pytest.approx(52.35)
    assert report.series["gpu_load"] == [] and report.series["tokens_per_s"] == []
    series_errors = {key: value for key, value in report.errors.items() if key.startswith("series.")}
    assert series_errors == {}, "Prometheus rejected a series query"
    assert report.errors == {}
    data = status_json(report)
    json.dumps(data)
    assert data["nodes"] == [
        {"name": "claw", "role": "claw", "up": True},
        {"name": "crush", "role": "crush", "up": False},
    ]
    assert "✗ crush  crush  down" in render_text(report)
