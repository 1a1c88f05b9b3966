"""The appliance's Prometheus rules (promtool check and unit tests) and the Grafana dashboard's queries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from claw.exporters.claw import FAMILIES as CLAW_FAMILIES
from claw.exporters.crush import FAMILIES as CRUSH_FAMILIES
from claw.exporters.offnet import FAMILIES as OFFNET_FAMILIES
from claw.swarm.metrics import SwarmMetrics

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "files/prometheus/rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "tests/prometheus").glob("*.test.yml"))
DASHBOARD = REPO / "files/grafana/appliance-dashboard.json"
SEVERITIES = {"critical", "warning", "info"}
# Series Prometheus makes itself, and the MCP servers' counters (claw.mcp.runtime.ToolMetrics), besides the
# exporters' families.
# The swarm supervisor's series, as its registry serves them.
SWARM_FAMILIES = {sample.name for family in SwarmMetrics(["w"]).registry.collect() for sample in family.samples}
BUILTIN_NAMES = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
PROMQL_WORDS |= {"inf", "nan"}


def find_promtool() -> str:
    promtool = shutil.which("promtool") or next(
        (str(path) for path in [REPO / ".cache/tools/usr/bin/promtool"] if path.is_file()), None
    )
    if promtool is None:
        pytest.fail(
            "promtool not found on PATH nor at .cache/tools/usr/bin/promtool: run `make pytest` (it unpacks "
            "Debian's 'prometheus' package into .cache/tools) or install the 'prometheus' package",
            pytrace=False,
        )
    return promtool


def run_promtool(*args: str) -> str:
    result = subprocess.run(
        [find_promtool(), *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    return report


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a regex approximation: no strings, labels, ranges, calls)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)\s*(\()?", expr):
        name, call = match.groups()
        if call is None and name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


def load_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules += group["rules"]
    return rules


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in load_rules() if "alert" in rule}


def test_rule_files_exist():
    assert [path.name for path in RULE_FILES] == ["appliance.rules.yml"]
    assert RULE_TESTS, "no tests/prometheus/*.test.yml"


def test_promtool_check_rules():
    report = run_promtool("check", "rules", *(str(path) for path in RULE_FILES))
    assert "SUCCESS" in report


def test_promtool_unit_tests():
    report = run_promtool("test", "rules", *(str(path) for path in RULE_TESTS))
    assert "FAILED" not in report


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (node) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', {"node_cpu_seconds_total"}),
        (
            "(crush_engine_up == 1) unless on (job, instance) crush_model_loaded_info",
            {"crush_engine_up", "crush_model_loaded_info"},
        ),
        ('label_replace(changes(x[15m]), "unit", "$1", "name", "(.+)") > 4', {"x"}),
        ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
        ("1 - node:memory_available:ratio offset 5m", {"node:memory_available:ratio"}),
        ("rate(a[$__rate_interval]) * 1e3", {"a"}),
    ],
)
def test_metric_names(expr, names):
    assert metric_names(expr) == names


def test_every_alert_has_severity_and_annotations():
    found = alerts()
    assert len(found) >= 12
    for name, rule in found.items():
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), name
        assert annotations.get("description"), name


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    cases: dict[str, list[bool]] = {}
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    for name in alerts():
        assert True in cases.get(name, []), f"no unit test where {name} fires"
        assert False in cases.get(name, []), f"no unit test where {name} stays quiet"
    assert set(cases) <= set(alerts()), f"tests for unknown alerts: {set(cases) - set(alerts())}"


def test_rules_use_only_metrics_the_exporters_emit():
    """A claw_/crush_ name in a rule must be one the exporters emit: catches typos promtool cannot."""
    exported = set(CLAW_FAMILIES) | set(CRUSH_FAMILIES) | set(OFFNET_FAMILIES) | set(SWARM_FAMILIES)
    for rule in load_rules():
        for name in metric_names(rule["expr"]):
            if name.startswith("claw_mcp_"):  # counters of claw.mcp.runtime.ToolMetrics
                continue
            if name.startswith(("claw_", "crush_")):
                assert name in exported, f"{rule.get('alert') or rule.get('record')}: {name} is not exported"


def known_names() -> set[str]:
    names = set(CLAW_FAMILIES) | set(CRUSH_FAMILIES) | set(OFFNET_FAMILIES) | set(SWARM_FAMILIES) | BUILTIN_NAMES
    for rule in load_rules():
        names |= metric_names(rule["expr"])
        if "record" in rule:
            names.add(rule["record"])
    return names


def dashboard_panels(panels: list[dict]) -> list[dict]:
    """Every panel, rows' collapsed panels included."""
    found = []
    for panel in panels:
        found.append(panel)
        found += dashboard_panels(panel.get("panels", []))
    return found


def test_dashboard_parses_and_queries_only_known_metrics():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"]
    assert [entry["name"] for entry in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dashboard_panels(dashboard["panels"])
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    known = known_names()
    exprs = 0
    for panel in panels:
        if panel.get("type") == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            unknown = metric_names(target["expr"]) - known
            assert not unknown, f"panel {panel['title']!r} queries {sorted(unknown)}, not in the exporters or rules"
            exprs += 1
    assert exprs >= 10
    titles = " ".join(panel["title"].lower() for panel in panels)
    for topic in ("power", "gpu", "temperature", "led", "alert"):
        assert topic in titles, topic
