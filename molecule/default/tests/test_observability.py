"""Prometheus on the claw node scrapes the whole cluster, and a stopped engine reaches the LEDs as an alert."""

from __future__ import annotations

import json
import time
import urllib.parse

PROMETHEUS = "http://127.0.0.1:9090"


def api(claw, path: str) -> dict:
    return json.loads(claw.check_output(f"curl -fsS '{PROMETHEUS}{path}'"))["data"]


def query(claw, expr: str) -> list[dict]:
    return api(claw, "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]


def test_every_target_of_the_cluster_is_up(claw):
    targets = api(claw, "/api/v1/targets?state=active")["activeTargets"]
    jobs = sorted({t["labels"]["job"] for t in targets})
    # The swarm's supervisor is scraped where the scenario declares workers (roles/swarm).
    swarm = ["swarm"] if claw.file("/etc/claw/swarm.yml").exists else []
    assert jobs == sorted(["claw", "crush", "mcp", "node", "prometheus", *swarm])
    assert {t["labels"]["node"] for t in targets if t["labels"]["job"] == "node"} == {"molecule-claw", "molecule-crush"}
    assert [t["scrapeUrl"] for t in targets if t["health"] != "up"] == []
    assert {r["metric"]["job"] for r in query(claw, "up == 1")} == set(jobs)


def test_rules_are_loaded_and_the_cost_estimate_is_visible(claw):
    groups = api(claw, "/api/v1/rules")["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
    expected = {"NodeDown", "CrushUnreachable", "EngineDown", "ThermalThrottling", "DiskNearlyFull", "OpenClawDown"}
    assert expected <= alerts
    cost = query(claw, "claw_electricity_cost_per_month")
    assert cost and 1.5 < float(cost[0]["value"][1]) < 3.0  # 14 W at 0.20/kWh, the seeds' "about $2 a month"


def test_stopped_engine_fires_its_alert_and_lights_the_strip(claw, crush):
    crush.run_expect([0], "systemctl stop llamacpp")
    try:
        firing: list[dict] = []
        deadline = time.monotonic() + 180  # EngineDown is `for: 1m`, scraped every 15 s
        while time.monotonic() < deadline and not firing:
            firing = query(claw, 'ALERTS{alertname="EngineDown", alertstate="firing"}')
            time.sleep(5)
        assert firing, "EngineDown did not fire within 3 minutes of stopping the engine"
        sources: list[tuple[str, str]] = []
        deadline = time.monotonic() + 30  # the LED watcher polls every 5 s
        while time.monotonic() < deadline:
            layers = json.loads(claw.check_output("claw leds get --json"))["layers"]
            sources = [(layer["source"], layer["state"]) for layer in layers]
            if ("prometheus", "alert_firing") in sources:
                break
            time.sleep(2)
        assert ("prometheus", "alert_firing") in sources, sources
    finally:
        crush.run_expect([0], "systemctl start llamacpp")
    ready = "curl -fsS http://127.0.0.1:8080/v1/models"
    crush.run_expect([0], f"for i in $(seq 60); do {ready} && exit 0; sleep 2; done; exit 1")
