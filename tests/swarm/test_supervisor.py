"""The supervisor against real worker processes: a SIGSTOPped worker and a deadlocked one are restarted within
the configured deadline, with an incident recorded, searchable and alerted (LED daemon, console hook); a
crash-looping worker is restarted with growing backoff and then left alone; the metrics parse."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest
from claw.leds.client import LedClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles.worker import LocalUnits, command
from tests.swarm.harness import Swarm, free_port, swarm, wait_for, wait_ready

pytestmark = pytest.mark.anyio


def samples(swarm_: Swarm) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(swarm_.metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def led_layers(socket_path) -> dict[str, dict]:
    answer = await LedClient(socket_path, timeout=2.0).get()
    return {layer["source"]: layer for layer in answer["layers"] if layer["source"]}


async def test_a_sigstopped_worker_is_restarted_within_the_deadline_recorded_and_alerted(tmp_path, led_socket):
    console_port = free_port()
    console = LocalUnits({"console.service": command(console_port)}, tmp_path)
    console.start("console.service")
    await wait_ready(f"http://127.0.0.1:{console_port}")
    try:
        async with swarm(
            tmp_path,
            {"alpha": False, "beta": False},
            led_socket=led_socket,
            console_notify_url=f"http://127.0.0.1:{console_port}/notify",
        ) as s:
            unit = s.unit("alpha")
            stopped_pid = s.units.pid(unit)
            os.kill(stopped_pid, signal.SIGSTOP)
            took = await wait_for(lambda: s.units.restarts[unit] >= 1, 30, "restart of the stopped worker")
            assert took <= s.settings.restart_deadline_s, f"restarted after {took:.2f} s"
            await wait_for(lambda: s.incidents("alpha"), 5, "the incident")
            assert s.units.pid(unit) != stopped_pid
            await wait_ready(s.urls["alpha"])

            incident = s.incidents("alpha")[0]
            assert incident.kind == "stopped"
            assert f"main process {stopped_pid} is stopped" in incident.symptom
            assert incident.action.startswith("killed and restarted worker@alpha.service")
            assert any("listening on" in line for line in incident.logs)
            found = await asyncio.to_thread(s.store.search, "stopped alpha")
            assert [i.id for i in found] == [incident.id]
            assert await asyncio.to_thread(s.store.search, "beta") == []

            layer = (await led_layers(led_socket))["swarm:alpha"]
            assert layer["state"] == "alert"
            assert layer["detail"].startswith("stopped: killed and restarted")
            assert s.units.restarts[s.unit("beta")] == 0  # the other worker was left alone

            log = console.log_file("console.service")
            await wait_for(lambda: "notified:" in log.read_text(), 5, "the console hook")
            [note] = [
                json.loads(line.partition(": ")[2]) for line in log.read_text().splitlines() if "notified" in line
            ]
            assert note["source"] == "claw-swarm"
            assert (note["id"], note["worker"], note["kind"]) == (incident.id, "alpha", "stopped")

            await wait_for(lambda: s.supervisor.states["alpha"].failures == 0, 5, "alpha probed healthy")
            await asyncio.sleep(3 * s.settings.probe_interval)
            values = samples(s)
            assert values[("claw_swarm_restarts_total", (("worker", "alpha"),))] == 1
            assert values[("claw_swarm_restarts_total", (("worker", "beta"),))] == 0
            assert values[("claw_swarm_incidents_total", (("kind", "stopped"), ("worker", "alpha")))] == 1
            assert values[("claw_swarm_worker_up", (("worker", "alpha"),))] == 1
            assert values[("claw_swarm_worker_ready", (("worker", "beta"),))] == 1
            assert 0 < values[("claw_swarm_probe_duration_seconds", (("worker", "alpha"),))] < 1
    finally:
        await console.stop_all()


async def test_a_deadlocked_worker_that_accepts_tcp_but_never_answers_is_restarted(tmp_path):
    async with swarm(tmp_path, {"gamma": False}, start_grace=0.5) as s:
        await asyncio.sleep(s.settings.start_grace)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"{s.urls['gamma']}/deadlock", timeout=0.3)
        started = time.monotonic()
        await wait_for(lambda: s.units.restarts[s.unit("gamma")] >= 1, 30, "restart of the deadlocked worker")
        assert time.monotonic() - started <= s.settings.restart_deadline_s
        await wait_for(lambda: s.incidents("gamma"), 5, "the incident")
        incident = s.incidents("gamma")[0]
        assert incident.kind == "not_ready"
        assert "no answer within 0.5 s" in incident.symptom
        assert "deadlocking on purpose" in incident.logs
        await wait_ready(s.urls["gamma"])


async def test_a_crash_looping_worker_backs_off_then_is_left_alone_with_the_alert_on(tmp_path, led_socket):
    async with swarm(tmp_path, {"delta": True}, led_socket=led_socket) as s:
        unit = s.unit("delta")
        await wait_for(lambda: s.supervisor.states["delta"].crash_loop is not None, 30, "the crash loop")
        assert s.units.restarts[unit] == 3
        actions = [i.action for i in s.incidents("delta")]
        assert actions[0] == "killed and restarted worker@delta.service"
        assert "after a 0.2 s backoff" in actions[1]
        assert "after a 0.4 s backoff" in actions[2]
        last = s.incidents("delta")[-1]
        assert last.kind == "crash_loop"
        assert last.symptom.startswith("crash loop: 3 restarts within 60 s; last not_active: unit is failed")
        assert "fatal: cannot load the agent's config" in "\n".join(last.logs)
        assert [i.id for i in await asyncio.to_thread(s.store.search, "crash loop delta")] == [last.id]

        await asyncio.sleep(10 * s.settings.probe_interval)
        assert s.units.restarts[unit] == 3, "restarted during a crash loop"
        layer = (await led_layers(led_socket))["swarm:delta"]
        assert layer["state"] == "service_down"
        values = samples(s)
        assert values[("claw_swarm_worker_crash_loop", (("worker", "delta"),))] == 1
        assert values[("claw_swarm_incidents_total", (("kind", "crash_loop"), ("worker", "delta")))] == 1

        # A person fixes the worker and starts it: it is ready, restarts resume, the alert goes.
        s.units.commands[unit] = command(int(s.urls["delta"].rsplit(":", 1)[1]))
        s.units.start(unit)
        await wait_for(lambda: s.supervisor.states["delta"].crash_loop is None, 20, "the recovery")
        assert "swarm:delta" not in await led_layers(led_socket)


async def test_a_refused_restart_is_recorded_and_counts_toward_the_crash_loop(tmp_path):
    async with swarm(tmp_path, {"eps": False}, start_grace=0.2) as s:
        unit = s.unit("eps")
        s.units.refused.add(unit)
        os.kill(s.units.pid(unit), signal.SIGSTOP)
        await wait_for(lambda: s.supervisor.states["eps"].crash_loop is not None, 30, "the crash loop")
        actions = [i.action for i in s.incidents("eps")]
        assert actions[0] == f"restart of {unit} failed: systemctl restart {unit} failed: Access denied"
        assert len(actions) == 4 and s.incidents("eps")[-1].kind == "crash_loop"
        os.kill(s.units.pid(unit), signal.SIGCONT)
        await wait_for(lambda: s.supervisor.states["eps"].crash_loop is None, 20, "the recovery")
