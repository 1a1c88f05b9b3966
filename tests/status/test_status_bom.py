"""The node's bill of materials (/var/lib/claw/bom.json, role release) in claw status: versions and the raw record."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.status import Sources, Version, bom_versions, collect_report, read_bom, status_json
from claw.status.cli import add_arguments
from claw.status.render import render_text

from tests.status.fake_prometheus import NOW, FakePrometheus

BOM: dict[str, Any] = {
    "node": "claw",
    "components": {"claw_apps": {"release": "0.5.0-0123456789ab", "path": "/opt/claw/releases/0.5.0-0123456789ab"}},
    "versions": {"claw_apps": "0.5.0-0123456789ab", "openclaw": "2026.1.5", "nodejs": "24.21.0"},
    "engine": {"name": "", "version": ""},
    "models": [],
    "os": {"distribution": "Debian", "version": "12.11", "kernel": "6.1.0", "architecture": "aarch64"},
}


@pytest.fixture
def bom(tmp_path: Path) -> Path:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(BOM), encoding="utf-8")
    return path


def collect(prometheus: FakePrometheus | None, bom_file: Path | None) -> Any:
    sources = Sources(
        prometheus_url="http://prometheus.test:9090" if prometheus is not None else None,
        leds_socket=None,
        last_update_file=None,
        bom_file=bom_file,
        prometheus_transport=httpx.MockTransport(prometheus.handle) if prometheus is not None else None,
    )
    return asyncio.run(collect_report(sources, clock=lambda: NOW))


def test_bom_versions_name_the_release_the_runtimes_the_engine_and_the_os():
    crush = {**BOM, "node": "crush", "versions": {}, "engine": {"name": "llamacpp", "version": "0.3.16"}}
    assert bom_versions(BOM) == [
        Version("claw", "claw", "0.5.0-0123456789ab"),
        Version("openclaw", "claw", "2026.1.5"),
        Version("nodejs", "claw", "24.21.0"),
        Version("os", "claw", "Debian 12.11 aarch64"),
    ]
    assert Version("llamacpp", "crush", "0.3.16") in bom_versions(crush)


def test_the_local_bom_replaces_prometheus_versions_of_its_node_only(bom):
    report = collect(FakePrometheus(), bom)
    versions = {(v.node, v.component): v.version for v in report.versions}
    assert versions[("claw", "claw")] == "0.5.0-0123456789ab"  # Prometheus says 0.4.0: the BOM is more precise
    assert versions[("claw", "openclaw")] == "2026.1.5"
    assert versions[("crush", "node_exporter")] == "1.5.0"  # other nodes still from Prometheus
    assert report.bom == BOM
    assert status_json(report)["bom"] == BOM
    assert "0.5.0-0123456789ab" in render_text(report)


def test_without_prometheus_the_bom_still_shows_this_node(bom):
    report = collect(None, bom)
    assert Version("nodejs", "claw", "24.21.0") in report.versions
    text = render_text(report)
    assert "24.21.0" in text


def test_an_absent_bom_is_no_error_and_a_broken_one_is_reported(tmp_path, bom):
    report = collect(FakePrometheus(), tmp_path / "absent.json")
    assert report.bom is None and "bom" not in report.errors
    assert {v.version for v in report.versions} >= {"0.4.0"}
    broken = tmp_path / "broken.json"
    broken.write_text('{"versions": {}}', encoding="utf-8")
    report = collect(FakePrometheus(), broken)
    assert report.bom is None and report.errors["bom"].startswith("unavailable: ")
    with pytest.raises(ValueError):
        read_bom(broken)
    assert read_bom(tmp_path / "none.json") is None


def test_the_cli_reads_the_bom_file_from_its_default_place():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).bom_file == Path("/var/lib/claw/bom.json")
    assert parser.parse_args(["--bom-file", "/tmp/b.json"]).bom_file == Path("/tmp/b.json")
