"""The node's last pull-mode run (pull-result.json, role pull) as the claw and the crush exporter export it."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from claw.exporters import pull
from claw.exporters.claw import ClawCollector, ClawExporterSettings, load_settings
from claw.exporters.crush import CrushCollector, build_parser
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.ansible_render import Node

REVISION = "3f2a" * 10
STARTED, FINISHED = "2026-03-01T03:12:00+00:00", "2026-03-01T03:14:30+00:00"


def result(outcome: str = "rolled back", **extra) -> dict:
    return {
        "revision": REVISION,
        "outcome": outcome,
        "message": "Run the site's acceptance checks: One or more items failed [app 2.0 refused]",
        "started": STARTED,
        "finished": FINISHED,
        "rc": 0 if outcome in ("updated", "unchanged", "waiting-for-crush") else 1,
        "last_success": {"revision": "1" * 40, "finished": "2026-02-28T03:10:00+00:00"},
        **extra,
    }


def write(tmp_path: Path, document) -> Path:
    path = tmp_path / "pull-result.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def claw_registry(tmp_path: Path, path: Path | None) -> CollectorRegistry:
    settings = ClawExporterSettings(sysfs_root=tmp_path, gateway_url=None, leds_socket=None, pull_result_file=path)
    registry = CollectorRegistry()
    registry.register(ClawCollector(settings))
    return registry


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_a_rolled_back_run_is_exported_by_the_claw_exporter(tmp_path):
    registry = claw_registry(tmp_path, write(tmp_path, result()))
    value = registry.get_sample_value
    for outcome in pull.OUTCOMES:
        expected = 1 if outcome == "rolled back" else 0
        assert value("claw_pull_last_outcome", {"outcome": outcome, "revision": REVISION}) == expected, outcome
    assert value("claw_pull_last_timestamp_seconds") == epoch(FINISHED)
    assert value("claw_pull_last_duration_seconds") == 150
    # The last success is the earlier run's, carried in the file.
    assert value("claw_pull_last_success_timestamp_seconds") == epoch("2026-02-28T03:10:00+00:00")
    assert value("claw_source_available", {"source": "pull"}) == 1
    # The message is free text: not a label.
    assert "refused" not in generate_latest(registry).decode()


@pytest.mark.parametrize("outcome", ["updated", "unchanged"])
def test_a_successful_run_is_its_own_last_success(tmp_path, outcome):
    registry = claw_registry(tmp_path, write(tmp_path, result(outcome, last_success=None)))
    assert registry.get_sample_value("claw_pull_last_outcome", {"outcome": outcome, "revision": REVISION}) == 1
    assert registry.get_sample_value("claw_pull_last_success_timestamp_seconds") == epoch(FINISHED)


def test_no_success_yet_has_no_success_time(tmp_path):
    registry = claw_registry(tmp_path, write(tmp_path, result("failed", last_success=None)))
    assert registry.get_sample_value("claw_pull_last_outcome", {"outcome": "failed", "revision": REVISION}) == 1
    assert registry.get_sample_value("claw_pull_last_success_timestamp_seconds") is None


def test_no_run_yet_or_no_file_configured_exports_no_pull_metrics(tmp_path, caplog):
    for path in (tmp_path / "missing.json", None):
        with caplog.at_level(logging.WARNING):
            registry = claw_registry(tmp_path, path)
            names = {family.name for family in registry.collect() if family.samples}
        assert not {name for name in names if "_pull_" in name}
        assert registry.get_sample_value("claw_source_available", {"source": "pull"}) == 0
    assert caplog.records == [], "a node before its first pull (or not in pull mode) is not a problem to log"


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        "[]",
        result("exploded"),
        result(revision=None),
        result(finished="2026-03-01T03:14:30"),  # no offset
        result(started="yesterday"),
    ],
)
def test_a_broken_file_is_unavailable_and_logged_once(tmp_path, document, caplog):
    registry = claw_registry(tmp_path, write(tmp_path, document))
    with caplog.at_level(logging.WARNING, logger="claw.exporters.claw"):
        for _ in range(3):
            assert registry.get_sample_value("claw_source_available", {"source": "pull"}) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not a pull result" in warnings[0], warnings


def test_the_crush_exporter_exports_the_same_under_its_prefix(tmp_path):
    registry = CollectorRegistry()
    registry.register(CrushCollector(tmp_path, engine=None, pull_result_file=write(tmp_path, result("updated"))))
    text = generate_latest(registry).decode()
    # The line a claw node's pulled run looks for (role pull, crush_ready.yml).
    assert f'crush_pull_last_outcome{{outcome="updated",revision="{REVISION}"}} 1.0' in text.splitlines()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(pull.families("crush")) <= set(families)
    assert registry.get_sample_value("crush_source_available", {"source": "pull"}) == 1


def test_each_scrape_reads_the_file_afresh(tmp_path):
    path = write(tmp_path, result("waiting-for-crush"))
    registry = claw_registry(tmp_path, path)
    labels = {"outcome": "waiting-for-crush", "revision": REVISION}
    assert registry.get_sample_value("claw_pull_last_outcome", labels) == 1
    write(tmp_path, result("updated"))
    assert registry.get_sample_value("claw_pull_last_outcome", labels) == 0


def test_the_role_configures_both_exporters_with_the_pull_result(tmp_path):
    node = Node(["exporters"], claw_apps_venv="/opt/claw/current/venv")
    config = tmp_path / "claw-exporter.yml"
    config.write_text(node.template("exporters", "claw-exporter.yml.j2"))
    assert load_settings(config).pull_result_file == pull.DEFAULT_RESULT_FILE
    unit = node.template("exporters", "claw-crush-exporter.service.j2")
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    args = build_parser().parse_args(exec_start.split()[3:])
    assert args.pull_result_file == pull.DEFAULT_RESULT_FILE
    # '' turns it off on both.
    off = Node(["exporters"], claw_apps_venv="/opt/claw/current/venv", exporters_pull_result_file="")
    assert yaml.safe_load(off.template("exporters", "claw-exporter.yml.j2"))["pull_result_file"] is None
    assert "--pull-result-file" not in off.template("exporters", "claw-crush-exporter.service.j2")
