"""The `swarm` MCP server, the supervisor agent's only powers, driven through the real MCP SDK client (issue #18).

Two real worker processes (the worker double) run under ``LocalUnits``, the supervisor's UnitManager stand-in;
the incident store is a real SQLite FTS5 file the supervisor's own store wrote. Over HTTP the server sits behind the
service's real client-key checks (ClientAuth, ToolAccess).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from claw.mcp.registry import ConfigError
from claw.mcp.swarm import Settings, build_server, load_swarm
from claw.swarm.limits import Bounds, LimitsError, validate_with_threadweaver
from claw.swarm.store import Incident, IncidentStore, StoreError
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.doubles.worker import LocalUnits, command
from tests.mcp.keys import keyed
from tests.mcp.serving import callers, served
from tests.mcp.test_mcp_runtime import free_port
from tests.mcp.tool_results import error_of

pytestmark = pytest.mark.anyio

WORKERS = ("alpha", "beta")
SUPERVISOR_KEY = "supervisor-agent-key-" + "s" * 32
READER_KEY = "swarm-reader-key-" + "r" * 32
OTHER_KEY = "files-only-key-" + "f" * 32
HOSTILE = [
    "ssh.service",
    "openclaw.service",
    "openclaw-worker@gamma.service",  # not declared
    "openclaw-worker@alpha.service ssh.service",
    "alpha ssh.service",
    "openclaw-worker@alpha.service\nssh.service",
    "openclaw-worker@alpha.service;reboot",
    "openclaw-worker@../alpha.service",
    "../alpha",
    "alpha/../beta",
    "/etc/systemd/system/openclaw-worker@alpha.service",
    "openclaw-worker@alpha.socket",
    "openclaw-worker@alpha.timer",
    "other-template@alpha.service",
    "openclaw-worker@.service",
    "openclaw-worker@*.service",
    "--all",
    "ALPHA",
    " alpha",
    "",
]


def unit(name: str) -> str:
    return f"openclaw-worker@{name}.service"


@pytest.fixture
def swarm_files(tmp_path: Path) -> dict[str, Any]:
    ports = {name: free_port() for name in WORKERS}
    swarm_yml = tmp_path / "swarm.yml"
    swarm_yml.write_text(
        json.dumps(
            {
                "store": {"path": str(tmp_path / "incidents.db")},
                "workers": [
                    {"name": name, "unit": unit(name), "health_url": f"http://127.0.0.1:{ports[name]}/healthz"}
                    for name in WORKERS
                ],
            }
        )
    )
    return {"ports": ports, "swarm_yml": swarm_yml, "db": tmp_path / "incidents.db", "limits": tmp_path / "limits.json"}


@pytest.fixture
async def units(swarm_files, tmp_path) -> AsyncIterator[LocalUnits]:
    local = LocalUnits({unit(name): command(port) for name, port in swarm_files["ports"].items()}, tmp_path)
    for name in WORKERS:
        local.start(unit(name))
    async with httpx.AsyncClient(timeout=1) as http:
        for port in swarm_files["ports"].values():
            with anyio.fail_after(15):
                while True:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await anyio.sleep(0.05)
    yield local
    await local.stop_all()


@pytest.fixture
def settings(swarm_files) -> Settings:
    return Settings(
        swarm_config=swarm_files["swarm_yml"],
        limits_file=swarm_files["limits"],
        bounds=Bounds.model_validate(
            {"cap_usd": {"min": 0.5, "max": 5}, "max_output_tokens": {"min": 64, "max": 1024}}
        ),
    )


@pytest.fixture
def server(settings, units):
    return build_server(settings, load_swarm(settings), units)


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_lists_workers_with_their_state(server, units):
    async with Client(server) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {
            "list_workers", "worker_status", "tail_logs", "search_incidents", "restart_worker", "set_worker_limits",
        }  # fmt: skip
        listed = (await call(client, "list_workers"))["workers"]
    assert [(w["name"], w["unit"], w["running"]) for w in listed] == [(n, unit(n), True) for n in WORKERS]
    assert [w["main_pid"] for w in listed] == [units.pid(unit(n)) for n in WORKERS]


async def test_status_and_logs_of_one_worker(server, units):
    await units._kill(unit("beta"))
    async with Client(server) as client:
        beta = await call(client, "worker_status", worker="beta")
        assert (beta["running"], beta["active_state"], beta["main_pid"]) == (False, "failed", None)
        by_unit = await call(client, "worker_status", worker=unit("alpha"))
        assert by_unit["running"] and by_unit["name"] == "alpha"
        logs = await call(client, "tail_logs", worker="alpha", lines=5)
        assert logs["unit"] == unit("alpha")
        assert any("listening on 127.0.0.1" in line for line in logs["lines"])
        assert (await client.call_tool("tail_logs", {"worker": "alpha", "lines": 201})).is_error
        refused = await client.call_tool("tail_logs", {"worker": "ssh.service"})
        assert "is not a declared worker" in error_of(refused, "tail_logs")


async def test_restart_kills_and_starts_a_declared_worker(server, units):
    before = units.pid(unit("alpha"))
    beta = units.pid(unit("beta"))
    async with Client(server) as client:
        report = await call(client, "restart_worker", worker="alpha")
    assert report["restarted"] and report["unit"] == unit("alpha")
    assert units.restarts == {unit("alpha"): 1, unit("beta"): 0}
    assert units.pid(unit("alpha")) != before and report["status"]["main_pid"] == units.pid(unit("alpha"))
    assert units.processes[unit("alpha")].poll() is None
    assert units.pid(unit("beta")) == beta


@pytest.mark.parametrize("name", HOSTILE)
async def test_restart_is_refused_for_any_other_unit(server, units, name):
    pids = {u: units.pid(u) for u in units.processes}
    async with Client(server) as client:
        result = await client.call_tool("restart_worker", {"worker": name})
    assert result.is_error
    if name:  # the empty name is refused the same way; its message has nothing more to check
        assert "is not a declared worker" in error_of(result, "restart_worker")
        assert "alpha, beta" in error_of(result, "restart_worker")
    assert units.restarts == dict.fromkeys(units.commands, 0)
    assert {u: units.pid(u) for u in units.processes} == pids
    assert all(process.poll() is None for process in units.processes.values())


async def test_a_refused_restart_is_a_clear_error(server, units):
    units.refused.add(unit("beta"))  # as polkit would answer without its rule
    async with Client(server) as client:
        result = await client.call_tool("restart_worker", {"worker": "beta"})
    assert "Access denied" in error_of(result, "restart_worker")


async def test_incidents_are_searched_read_only(server, swarm_files):
    store = IncidentStore(swarm_files["db"])
    store.record(Incident("alpha", "stopped", "alpha is stopped (SIGSTOP)", "killed and restarted", ("froze",)))
    store.record(Incident("beta", "not_ready", "beta does not answer /healthz", "killed and restarted"))
    store.close()
    before = swarm_files["db"].read_bytes()
    async with Client(server) as client:
        found = (await call(client, "search_incidents", text="stopped alpha"))["incidents"]
        assert [(i["worker"], i["kind"], i["logs"]) for i in found] == [("alpha", "stopped", ["froze"])]
        assert (await call(client, "search_incidents", text='NEAR("x" OR'))["incidents"] == []  # no FTS syntax
        beta = (await call(client, "search_incidents", worker="beta"))["incidents"]
        assert [i["symptom"] for i in beta] == ["beta does not answer /healthz"]
        assert len((await call(client, "search_incidents"))["incidents"]) == 2
        status = await call(client, "worker_status", worker="alpha")
        assert status["recent_incidents"] == 1
        refused = await client.call_tool("search_incidents", {"worker": "../beta"})
        assert "is not a declared worker" in error_of(refused, "search_incidents")
    assert swarm_files["db"].read_bytes() == before
    reader = IncidentStore(swarm_files["db"], read_only=True)
    with pytest.raises(StoreError, match="read-only"):
        reader.record(Incident("alpha", "stopped", "x", "y"))
    reader.close()


async def test_no_incident_store_yet_lists_nothing(server, swarm_files):
    async with Client(server) as client:
        assert (await call(client, "search_incidents", text="anything"))["incidents"] == []
    assert not swarm_files["db"].exists()  # a reader never creates the supervisor's store


async def test_limits_within_bounds_are_written_for_threadweaver(server, swarm_files):
    async with Client(server) as client:
        report = await call(client, "set_worker_limits", worker="alpha", cap_usd=2.5, max_output_tokens=512)
        assert report["gateway_client"] == "worker-alpha"
        again = await call(client, "set_worker_limits", worker="alpha", max_history_turns=6)
        assert again["limits"] == {"cap_usd": 2.5, "max_output_tokens": 512, "max_history_turns": 6}
        status = await call(client, "worker_status", worker="alpha")
        assert status["limits"] == again["limits"]
    written = json.loads(swarm_files["limits"].read_text())
    assert written == {
        "version": 1,
        "clients": {"worker-alpha": {"cap_usd": 2.5, "max_output_tokens": 512, "max_history_turns": 6}},
    }
    assert oct(swarm_files["limits"].stat().st_mode & 0o777) == "0o640"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"cap_usd": 5.01}, "cap_usd 5.01 is outside the operator's bounds [0.5, 5.0]"),
        ({"cap_usd": 0.1}, "cap_usd 0.1 is outside"),
        ({"cap_usd": 1.0, "max_output_tokens": 2048}, "max_output_tokens 2048 is outside"),
        ({"max_history_turns": 51}, "max_history_turns 51 is outside"),
        ({"max_history_turns": 0}, "max_history_turns 0 is outside"),
        ({}, "give at least one of"),
    ],
)
async def test_limits_out_of_bounds_are_refused_and_nothing_changes(server, swarm_files, arguments, message):
    async with Client(server) as client:
        await call(client, "set_worker_limits", worker="beta", cap_usd=1.0)
        before = swarm_files["limits"].read_bytes()
        result = await client.call_tool("set_worker_limits", {"worker": "beta", **arguments})
        assert message in error_of(result, "set_worker_limits")
        for name in ("gamma", unit("alpha") + " x"):
            refused = await client.call_tool("set_worker_limits", {"worker": name, "cap_usd": 1.0})
            assert "is not a declared worker" in error_of(refused, "set_worker_limits")
    assert swarm_files["limits"].read_bytes() == before
    assert [p.name for p in swarm_files["limits"].parent.iterdir() if p.name.startswith(".limits")] == []


def test_threadweaver_validator_has_the_last_word():
    validate_with_threadweaver({"cap_usd": 1.0, "max_output_tokens": 10, "max_history_turns": 2})
    for bad in ({"cap_usd": -1}, {"max_output_tokens": 0}, {"max_history_turns": 0}, {"cap_usd": "lots"}):
        with pytest.raises(LimitsError, match="ThreadWeaver refuses"):
            validate_with_threadweaver(bad)


def test_workers_that_are_not_template_instances_are_refused(tmp_path):
    swarm_yml = tmp_path / "swarm.yml"
    swarm_yml.write_text(
        json.dumps({"workers": [{"name": "alpha", "unit": "ssh.service", "health_url": "http://127.0.0.1:1/"}]})
    )
    with pytest.raises(ConfigError, match=r"only openclaw-worker@alpha\.service is managed"):
        load_swarm(Settings(swarm_config=swarm_yml))
    with pytest.raises(ConfigError, match="cannot read"):
        load_swarm(Settings(swarm_config=tmp_path / "missing.yml"))


@pytest.fixture
async def over_http(server) -> AsyncIterator[str]:
    known = callers(
        {
            "supervisor": (SUPERVISOR_KEY, {"swarm": "*"}),
            "reader": (READER_KEY, {"swarm": ["list_workers", "search_incidents"]}),
            "other": (OTHER_KEY, {"files": "*"}),
        }
    )
    async with served(server, known) as url:
        yield url


async def test_over_http_only_the_supervisors_key_restarts(over_http, units):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        for authorization in (None, "Bearer", f"Bearer {SUPERVISOR_KEY}x"):
            sent = dict(headers, **({"Authorization": authorization} if authorization else {}))
            answer = await http.post(over_http, json=initialize, headers=sent)
            assert answer.status_code == 401, answer.text
        other = await http.post(over_http, json=initialize, headers=dict(headers, Authorization=f"Bearer {OTHER_KEY}"))
        assert other.status_code == 403
        assert "client other may not use the swarm server" in other.text
    async with keyed(over_http, READER_KEY) as reader:
        assert {t.name for t in (await reader.list_tools()).tools} == {"list_workers", "search_incidents"}
        with pytest.raises(MCPError, match="client reader may not call swarm tool 'restart_worker'"):
            await reader.call_tool("restart_worker", {"worker": "alpha"})
        with pytest.raises(MCPError, match="may not call swarm tool 'set_worker_limits'"):
            await reader.call_tool("set_worker_limits", {"worker": "alpha", "cap_usd": 1})
    assert units.restarts == dict.fromkeys(units.commands, 0)
    async with keyed(over_http, SUPERVISOR_KEY) as supervisor:
        result = await supervisor.call_tool("restart_worker", {"worker": "beta"})
        assert not result.is_error, result.content
        refused = await supervisor.call_tool("restart_worker", {"worker": "claw-mcp.service"})
        assert "is not a declared worker" in error_of(refused, "restart_worker")
    assert units.restarts == {unit("alpha"): 0, unit("beta"): 1}
