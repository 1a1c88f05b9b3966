"""The claw node's tools: five MCP servers on loopback, the LED daemon and its watcher, used for real."""

from __future__ import annotations

import json
import time

VENV_PYTHON = "/opt/claw/current/venv/bin/python"
PORTS = {"leds": 8701, "system": 8702, "crush": 8703, "time": 8704, "files": 8705}
MIN_TOOLS = {"leds": 8, "system": 6, "crush": 6, "time": 4, "files": 5}

# The MCP client whose key the calls use (the servers refuse anonymous HTTP callers).
KEY_FILE = "/etc/claw/mcp-keys/openclaw.key"

# Runs on the claw node with the release's own SDK: one MCP call over loopback streamable HTTP with the client key
# of the file named last, printed as JSON.
CALL = r"""
import json, sys, anyio
from pathlib import Path
from mcp import Client
from claw.mcp.client import keyed_transport, read_key
async def main():
    url = f"http://127.0.0.1:{sys.argv[1]}/mcp"
    async with Client(keyed_transport(url, read_key(Path(sys.argv[4])))) as client:
        if sys.argv[2] == "tools/list":
            tools = (await client.list_tools()).tools
            print(json.dumps([{"name": t.name, "annotations": t.annotations.model_dump() if t.annotations else None}
                              for t in tools]))
        else:
            result = await client.call_tool(sys.argv[2], json.loads(sys.argv[3]))
            text = "".join(block.text for block in result.content if block.type == "text")
            print(json.dumps({"error": result.is_error, "data": result.structured_content, "text": text}))
anyio.run(main)
"""


def mcp(claw, server: str, tool: str, arguments: dict | None = None):
    command = f"{VENV_PYTHON} -c %s %s %s %s %s"
    result = claw.run(command, CALL, str(PORTS[server]), tool, json.dumps(arguments or {}), KEY_FILE)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def led_state(claw) -> dict:
    return json.loads(claw.check_output("claw leds get --json"))


def test_services_run_hardened_as_their_own_users(claw):
    for unit, user in [("claw-mcp", "claw-mcp"), ("claw-leds", "claw-leds"), ("claw-leds-watcher", "claw-leds")]:
        assert claw.service(unit).is_running and claw.service(unit).is_enabled, unit
        props = claw.check_output(f"systemctl show {unit} -p User -p NoNewPrivileges -p ProtectSystem")
        assert f"User={user}" in props
        assert "NoNewPrivileges=yes" in props
        assert "ProtectSystem=strict" in props


def test_mcp_servers_listen_on_loopback_only(claw):
    listening = claw.check_output("ss -Hltn")
    for port in [*PORTS.values(), 8709]:
        assert f"127.0.0.1:{port} " in listening, port
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening


def test_anonymous_local_callers_are_refused_on_every_server(claw):
    """Any local user reaches the loopback ports; only a client with its key is served (401 before any session)."""
    initialize = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}}
    )  # fmt: skip
    for server, port in PORTS.items():
        status = claw.check_output(
            "runuser -u nobody -- curl -s -o /dev/null -w '%%{http_code}' -X POST -H 'Content-Type: application/json' "
            "-H 'Accept: application/json, text/event-stream' --data %s http://127.0.0.1:%s/mcp",
            initialize,
            str(port),
        )
        assert status == "401", (server, status)
    assert claw.run("runuser -u nobody -- cat %s", KEY_FILE).rc != 0


def test_every_server_lists_annotated_tools(claw):
    total = 0
    for server, minimum in MIN_TOOLS.items():
        tools = mcp(claw, server, "tools/list")
        assert len(tools) >= minimum, (server, tools)
        for tool in tools:
            assert tool["annotations"] is not None, tool
            assert tool["annotations"]["read_only_hint"] is not None, tool
        total += len(tools)
    assert total >= 28


def test_crush_bridge_returns_the_models_crush_serves(claw):
    models = mcp(claw, "crush", "list_models")
    assert not models["error"], models
    assert [m["name"] for m in models["data"]["models"]] == ["gemma3-270m"]
    health = mcp(claw, "crush", "engine_health")
    assert health["data"]["reachable"] is True and health["data"]["engine"] == "llamacpp"
    summary = mcp(claw, "crush", "gpu_summary")
    assert "gpu" in summary["data"]["unavailable"]  # no Jetson here, and it says so


def test_led_tool_changes_what_the_daemon_shows(claw):
    result = mcp(claw, "leds", "set_color", {"color": "#00ff00"})
    assert not result["error"], result
    state = led_state(claw)
    assert state["backend"] == "simulated"
    assert any(layer["key"] == "manual" for layer in state["layers"])
    mirrored = json.loads(claw.file("/run/claw-leds/state.json").content_string)
    assert mirrored  # the simulated strip's frame, for the console
    assert not mcp(claw, "leds", "clear")["error"]
    assert not any(layer["key"] == "manual" for layer in led_state(claw)["layers"])


def test_led_socket_is_for_the_leds_group_only(claw):
    assert claw.file("/run/claw-leds").mode == 0o750
    assert claw.file("/run/claw-leds/leds.sock").mode == 0o660
    assert claw.file("/run/claw-leds/leds.sock").group == "claw-leds"
    refused = claw.run("runuser -u nobody -- /opt/claw/current/venv/bin/claw leds get")
    assert refused.rc == 1
    assert "/run/claw-leds/leds.sock" in refused.stderr


def test_files_server_writes_inside_its_sandbox_and_refuses_escapes(claw):
    assert not mcp(claw, "files", "write_file", {"path": "note.txt", "content": "hello"})["error"]
    assert claw.file("/var/lib/claw-mcp/sandbox/note.txt").content_string == "hello"
    escape = mcp(claw, "files", "read_file", {"path": "../../../etc/shadow"})
    assert escape["error"]
    assert "root:" not in escape["text"]


def test_system_server_restarts_allow_listed_units_only(claw):
    before = claw.check_output("systemctl show -p MainPID --value claw-leds-watcher")
    restarted = mcp(claw, "system", "restart_service", {"unit": "claw-leds-watcher.service"})
    assert not restarted["error"], restarted
    assert claw.check_output("systemctl show -p MainPID --value claw-leds-watcher") != before
    refused = mcp(claw, "system", "restart_service", {"unit": "ssh.service"})
    assert refused["error"]
    assert "ssh.service is not one of the services" in refused["text"]
    # The polkit rule is the only grant: the same user cannot stop the unit.
    stop = claw.run("runuser -u claw-mcp -- systemctl stop claw-leds-watcher.service")
    assert stop.rc != 0
    assert claw.service("claw-leds-watcher").is_running


def test_time_server_keeps_reminders_across_a_restart(claw):
    created = mcp(claw, "time", "create_reminder", {"message": "water the plants", "in_seconds": 3600})
    assert not created["error"], created
    claw.run_expect([0], "systemctl restart claw-mcp")
    claw.run_expect([0], "for i in $(seq 30); do ss -Hltn | grep -q 127.0.0.1:8704 && exit 0; sleep 1; done; exit 1")
    pending = mcp(claw, "time", "list_reminders", {"status": "pending"})
    assert "water the plants" in json.dumps(pending["data"])


def test_tool_calls_are_counted_per_tool(claw):
    mcp(claw, "files", "sandbox_path")
    metrics = claw.check_output("curl -fsS http://127.0.0.1:8709/metrics")
    assert 'claw_mcp_tool_calls_total{server="files",tool="sandbox_path"}' in metrics
    assert "claw_mcp_tool_duration_seconds_bucket" in metrics


def test_stopped_engine_lights_the_alert_and_the_bridge_says_why(claw, crush):
    crush.run_expect([0], "systemctl stop llamacpp")
    try:
        deadline = time.monotonic() + 40
        states: list[str] = []
        while time.monotonic() < deadline:
            states = [layer.get("state") for layer in led_state(claw)["layers"]]
            if "crush_unreachable" in states:
                break
            time.sleep(2)
        assert "crush_unreachable" in states, states
        assert led_state(claw)["winner"]["level"] == "alert"
        down = mcp(claw, "crush", "list_models")
        assert down["error"]
        # crush refuses the connection (nftables admits claw, nothing listens): engine down, not crush unreachable.
        assert "nothing listens on" in down["text"] and "stopped or still starting" in down["text"], down["text"]
    finally:
        crush.run_expect([0], "systemctl start llamacpp")
    ready = "curl -fsS http://127.0.0.1:8080/v1/models"
    crush.run_expect([0], f"for i in $(seq 60); do {ready} && exit 0; sleep 2; done; exit 1")
