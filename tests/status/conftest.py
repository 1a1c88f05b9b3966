"""Fixtures for the status tests: a fake Prometheus, a real LED daemon, a last-update record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.status.fake_prometheus import FakePrometheus


@pytest.fixture
def prometheus() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
def last_update(tmp_path: Path) -> Path:
    path = tmp_path / "last-update.json"
    record = {"time": "2025-11-20T18:04:11+00:00", "playbook": "playbooks/update.yml", "version": "0.4.0"}
    path.write_text(json.dumps(record), encoding="utf-8")
    return path
