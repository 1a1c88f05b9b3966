"""Probes on real processes and servers: /proc states, readiness, the synthetic turn; and SystemdUnits' commands."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest
from claw.swarm.config import SwarmSettings
from claw.swarm.probes import Prober, liveness_failure, process_state
from claw.swarm.units import SystemdUnits, UnitError, UnitStatus, run_command

from tests.doubles.http import closed_port_url, fixed_routes, running
from tests.doubles.worker import FixedUnits, SystemctlScript

pytestmark = pytest.mark.anyio


def test_a_stopped_process_reads_as_state_t_and_fails_liveness():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_state(child.pid) in {"S", "R"}
        assert liveness_failure(UnitStatus("active", "running", child.pid)) is None
        os.kill(child.pid, signal.SIGSTOP)
        for _ in range(100):
            if process_state(child.pid) == "T":
                break
            asyncio.run(asyncio.sleep(0.01))
        failure = liveness_failure(UnitStatus("active", "running", child.pid))
        assert failure is not None and failure.kind == "stopped"
    finally:
        child.kill()
        child.wait()
    assert process_state(child.pid) is None


def test_proc_stat_with_parentheses_in_the_name(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text("7 (node (worker) x) T 1 7 7 0 -1\n")
    assert process_state(7, tmp_path) == "T"
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "stat").write_text("8 (zz) Z 1\n")
    assert liveness_failure(UnitStatus("active", "running", 8), tmp_path).kind == "zombie"
    assert liveness_failure(UnitStatus("failed", "exit-code", 0)).text == "unit is failed (exit-code)"
    assert liveness_failure(UnitStatus("active", "exited", 0)) is None


def make(url: str, turn: dict | None = None) -> SwarmSettings:
    worker = {"name": "w", "unit": "w.service", "health_url": f"{url}/healthz"}
    return SwarmSettings.model_validate({"probe_timeout": 0.5, "workers": [{**worker, "turn": turn}]})


async def probe(settings: SwarmSettings, units: FixedUnits, turn_due: bool = True):
    async with httpx.AsyncClient() as http:
        return await Prober(settings, units, http).probe(settings.workers[0], turn_due=turn_due)


async def test_readiness_and_the_turn_against_a_real_server():
    app = fixed_routes(
        {"/healthz": (200, {"ok": True}), "/slow": (200, {"ok": True}, 2.0), "/turn": (200, {"a": "pong"})}
    )
    alive = FixedUnits(UnitStatus("active", "running", os.getpid()))
    with running(app) as url:
        ok = await probe(make(url, {"url": f"{url}/turn", "method": "GET", "expect": "pong"}), alive)
        assert (ok.up, ok.ready, ok.failure, ok.turn_passed) == (True, True, None, True)
        wrong = await probe(make(url, {"url": f"{url}/turn", "expect": "nope"}), alive)
        assert wrong.failure.kind == "turn_failed"
        assert wrong.failure.text == f"POST {url}/turn: the answer does not contain 'nope'"
        not_due = await probe(make(url, {"url": f"{url}/missing"}), alive, turn_due=False)
        assert not_due.failure is None and not not_due.turn_passed
        slow = await probe(make(url, {"url": f"{url}/slow", "method": "GET", "timeout": 0.3}), alive)
        assert slow.failure.text == f"GET {url}/slow: no answer within 0.3 s"
        unknown = await probe(make(url), FixedUnits(UnitError("systemctl is gone")))
        assert (unknown.up, unknown.ready, unknown.failure) == (None, True, None)
    refused = await probe(make(closed_port_url()), alive)
    assert refused.failure.kind == "not_ready"
    assert "ConnectError" in refused.failure.text


async def test_systemd_units_runs_the_expected_commands():
    runner = SystemctlScript(
        {
            ("systemctl", "show"): (0, "ActiveState=active\nSubState=running\nMainPID=4242\n", ""),
            ("systemctl", "kill"): (1, "", "Failed to kill unit: No main process to kill\n"),
            ("journalctl", "--no-pager"): (0, "one\ntwo\n", ""),
            ("systemctl", "restart"): (1, "", "Failed to restart w.service: Access denied\n"),
        }
    )
    units = SystemdUnits(runner=runner)
    assert await units.status("w.service") == UnitStatus("active", "running", 4242)
    assert await units.logs("w.service", 20) == ["one", "two"]
    with pytest.raises(
        UnitError, match=r"systemctl restart w\.service failed: Failed to restart w\.service: Access denied"
    ):
        await units.restart("w.service")
    assert runner.calls == [
        ["systemctl", "show", "--property=ActiveState,SubState,MainPID", "--", "w.service"],
        ["journalctl", "--no-pager", "--quiet", "-o", "cat", "-n", "20", "-u", "w.service"],
        ["systemctl", "kill", "--signal=SIGKILL", "--", "w.service"],
        ["systemctl", "restart", "--", "w.service"],
    ]


async def test_run_command_reports_missing_and_slow_commands():
    assert await run_command([sys.executable, "-c", "print('hi')"], 10) == (0, "hi\n", "")
    with pytest.raises(UnitError, match="cannot run"):
        await run_command(["/nonexistent/systemctl", "show"], 1)
    with pytest.raises(UnitError, match=r"did not finish within 0\.2 s"):
        await run_command([sys.executable, "-c", "import time; time.sleep(5)"], 0.2)
