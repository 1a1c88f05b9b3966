"""The settings checker: what it refuses (with the reason on one line) and the restart deadline it enforces."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from claw.cli import main
from claw.swarm.config import MAX_RESTART_DEADLINE_S, SwarmSettings, load, parse

WORKER = {
    "name": "research",
    "unit": "openclaw-worker@research.service",
    "health_url": "http://127.0.0.1:18801/healthz",
}


def settings(**changes) -> dict:
    return {"workers": [WORKER], **changes}


def test_the_defaults_keep_the_60_second_promise():
    checked = parse(settings())
    assert checked.restart_deadline_s == 3 * 5 + 2 + 2 + 10 == 29
    with_turn = parse(settings(workers=[{**WORKER, "turn": {"url": "http://127.0.0.1:18801/turn"}}]))
    assert with_turn.restart_deadline_s == 3 * 7 + 7 + 2 + 10 <= MAX_RESTART_DEADLINE_S


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"probe_interval": -1}, "probe_interval: Input should be greater than 0"),
        ({"probe_timeout": 0}, "probe_timeout: Input should be greater than 0"),
        ({"hung_after": 0}, "hung_after: Input should be greater than or equal to 1"),
        ({"workers": []}, "workers: List should have at least 1 item"),
        (
            {"workers": [WORKER, {**WORKER, "unit": "openclaw-worker@other.service"}]},
            "own name; given more than once: research",
        ),
        (
            {"workers": [WORKER, {**WORKER, "name": "other"}]},
            "own unit; given more than once: openclaw-worker@research.service",
        ),
        ({"workers": [{**WORKER, "unit": "-rf.service"}]}, "workers.0.unit: String should match pattern"),
        ({"workers": [{**WORKER, "unit": "openclaw.socket"}]}, "workers.0.unit: String should match pattern"),
        ({"workers": [{**WORKER, "name": "Research Bot"}]}, "workers.0.name: String should match pattern"),
        ({"workers": [{**WORKER, "health_url": "127.0.0.1:18801"}]}, "expected an http:// or https:// URL"),
        ({"backoff": {"initial": 10, "max": 5}}, "backoff max (5 s) is below initial (10 s)"),
        ({"backoff": {"factor": 0.5}}, "backoff.factor: Input should be greater than or equal to 1"),
        ({"crash_loop": {"restarts": 1}}, "crash_loop.restarts: Input should be greater than or equal to 2"),
        ({"listen": "9105"}, "expected HOST:PORT"),
        ({"console_notify_url": "ftp://console"}, "expected an http:// or https:// URL"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"probe_interval": 20}, "a hung worker could wait 74 s for its restart"),
        (
            {"workers": [{**WORKER, "turn": {"url": "http://127.0.0.1:18801/turn", "timeout": 30}}]},
            "a hung worker could wait 140 s for its restart",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_reason(changes, reason):
    with pytest.raises(ValueError) as caught:
        parse(settings(**changes))
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_check_entry_validates_a_file_and_starts_nothing(tmp_path, capsys):
    good = tmp_path / "swarm.yml"
    good.write_text(yaml.safe_dump(settings(listen="127.0.0.1:9105")))
    assert main(["swarm", "run", "--config", str(good), "--check"]) == 0
    assert "the settings are valid (1 workers, restart deadline 29 s)" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(settings(probe_interval=-1)))
    assert main(["swarm", "run", "--config", str(bad), "--check"]) == 2
    assert "probe_interval: Input should be greater than 0" in capsys.readouterr().err
    (tmp_path / "list.yml").write_text("- 1\n")
    assert main(["swarm", "run", "--config", str(tmp_path / "list.yml"), "--check"]) == 2
    with pytest.raises(ValueError, match="cannot read"):
        load(tmp_path / "missing.yml")


def test_the_claw_command_registers_swarm():
    done = subprocess.run(
        [sys.executable, "-m", "claw.cli", "swarm", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0
    assert "incidents" in done.stdout
    assert isinstance(SwarmSettings.model_json_schema(), dict)
