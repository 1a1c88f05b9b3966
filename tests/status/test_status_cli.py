"""`claw status` end to end over real sockets: the text report, --json, and the exit status fleets gate on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from claw.cli import main

from tests.status.fake_prometheus import alert, serve
from tests.status.status_engine import ollama

REPO = Path(__file__).resolve().parents[2]


def run_status(capsys, url: str, *extra: str) -> tuple[int, str]:
    # The fakes answer at once; a busy machine (pytest -n, other jobs) must not turn the 2 s default into a timeout.
    code = main(["status", "--prometheus", url, "--no-leds", "--timeout", "30", *extra])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_all_up_exits_0_with_an_aligned_report(capsys, prometheus, last_update):
    with serve(prometheus.handle) as url:
        code, out = run_status(capsys, url, "--last-update-file", str(last_update))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"PicoCluster Claw status (Prometheus {url}, ")
    assert "  ✓ claw   claw   up" in lines
    assert "  ✓ crush  crush  up" in lines
    assert "  ✓ none firing" in lines
    assert "  2025-11-20T18:04:11+00:00  playbooks/update.yml  0.4.0" in lines
    assert any(line.startswith("  ✓ claw   openclaw.service") for line in lines)
    power = next(line for line in lines if "power" in line and "W" in line)
    assert "21.2 W" in power and "(min 14.0, max 21.2)" in power
    assert any("GPU load" in line and "75.0 %" in line for line in lines)
    assert any("tokens/s" in line and "no data" in line for line in lines)
    assert lines[-1] == "✓ healthy (exit 0)"


def test_node_down_exits_1_and_is_shown(capsys, prometheus):
    prometheus.nodes["crush"] = ("crush", False)
    with serve(prometheus.handle) as url:
        code, out = run_status(capsys, url)
    assert code == 1
    crush = next(line for line in out.splitlines() if line.startswith("  ✗ crush"))
    assert "down" in crush and "no route to host" in crush
    assert out.splitlines()[-1] == "✗ node crush is down (exit 1)"


@pytest.mark.parametrize(
    ("firing", "code", "shown", "verdict"),
    [
        pytest.param(
            alert("EngineDown", "critical", "Inference engine ollama is down", node="crush"),
            1,
            "  ✗ critical  EngineDown  Inference engine ollama is down",
            "✗ critical alert EngineDown: Inference engine ollama is down (exit 1)",
            id="critical-exits-1",
        ),
        pytest.param(
            alert("UnderVoltage", "warning", "claw is under-voltage", node="claw"),
            0,
            "  ! warning  UnderVoltage  claw is under-voltage",
            None,  # shown, and the verdict stays the healthy one
            id="warning-is-shown-but-exits-0",
        ),
    ],
)
def test_firing_alert_is_shown(capsys, prometheus, firing, code, shown, verdict):
    prometheus.alerts = [firing]
    with serve(prometheus.handle) as url:
        status, out = run_status(capsys, url)
    assert status == code
    assert shown in out.splitlines()
    if verdict is not None:
        assert out.splitlines()[-1] == verdict


def test_json_output(capsys, prometheus):
    with serve(prometheus.handle) as url, serve(ollama) as engine:
        code, out = run_status(capsys, url, "--json", "--engine", engine)
    assert code == 0
    data = json.loads(out)
    assert data["nodes"][0] == {"name": "claw", "role": "claw", "up": True}
    assert data["models"] == [{"name": "qwen3:4b", "loaded": True}, {"name": "llama3.2:1b", "loaded": False}]
    assert data["leds"] is None and data["errors"] == {}
    assert data["healthy"] is True


def test_unreachable_prometheus_exits_1_without_a_traceback(closed_port_url, tmp_path):
    # A real process: nothing may escape as a traceback on stderr.
    env_path = str(REPO / "apps")
    result = subprocess.run(
        [
            *(sys.executable, "-c", "import sys; from claw.cli import main; sys.exit(main())", "status"),
            *("--prometheus", closed_port_url, "--leds-socket", str(tmp_path / "none.sock")),
            *("--last-update-file", str(tmp_path / "none.json")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == ""
    assert f"✗ Prometheus unavailable: cannot connect to {closed_port_url}" in result.stdout
    assert "  ✗ unavailable (Prometheus)" in result.stdout
    assert "  ✗ unavailable: LED daemon unavailable at" in result.stdout
    assert "Traceback" not in result.stdout


def test_engine_given_shows_served_models(capsys, prometheus):
    with serve(prometheus.handle) as url, serve(ollama) as engine:
        code, out = run_status(capsys, url, "--engine", engine)
    assert code == 0
    lines = out.splitlines()
    assert "  ✓ qwen3:4b     loaded" in lines
    assert "  · llama3.2:1b  served" in lines


@pytest.mark.parametrize("bad", ["127.0.0.1:9090", "ftp://x"])
def test_bad_url_is_a_usage_error(capsys, bad):
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--prometheus", bad])
    assert exit_info.value.code == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err


def test_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    out = capsys.readouterr().out
    assert "Exit status: 0 every node is up and no critical alert fires; 1 otherwise" in out
