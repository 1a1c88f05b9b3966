"""The `leds` MCP server driven in-process by the official SDK client, against a real in-process LED daemon."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from claw.leds.backends import SimulatedBackend
from claw.leds.client import LedClient
from claw.leds.daemon import LedDaemon, LedService
from claw.leds.state import COLORS, LedState
from claw.mcp.leds import Settings, build_server, create
from claw.mcp.registry import ProcessConfig, server_settings
from mcp import Client
from pydantic import ValidationError

from tests.mcp.tool_results import text_of

pytestmark = pytest.mark.anyio

TOOLS = {
    "set_color",
    "set_progress",
    "pulse_success",
    "pulse_error",
    "flash_alert",
    "show_pattern",
    "clear",
    "get_state",
}
OFF = {"color": "#000000", "brightness": 0.0}


@pytest.fixture
def sock_dir():
    path = Path(tempfile.mkdtemp(prefix="leds-mcp-", dir="/tmp"))  # short: socket paths must fit in 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def led_client(sock_dir):
    """A daemon whose state clock stands still, so what a blinking layer shows does not depend on timing."""
    backend = SimulatedBackend()
    state = LedState(clock=lambda: 1000.0)
    async with LedDaemon(LedService(state, backend.name), backend, sock_dir / "leds.sock") as daemon:
        yield LedClient(daemon.socket_path, timeout=2)


async def call(client: Client, tool: str, arguments: dict | None = None) -> dict:
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, text_of(result)
    return result.structured_content


async def test_tools_list_has_annotations_and_schemas(led_client):
    async with Client(build_server(led_client)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description
        assert tool.annotations.destructive_hint is False, tool.name
        assert tool.annotations.open_world_hint is False, tool.name
        assert tool.annotations.read_only_hint is (tool.name == "get_state"), tool.name
        assert tool.output_schema is not None, tool.name
        assert {"shown", "pixels", "layers"} <= set(tool.output_schema["properties"])
    idempotent = {name for name, tool in tools.items() if tool.annotations.idempotent_hint}
    assert idempotent == {"set_color", "set_progress", "show_pattern", "clear", "get_state"}
    color = tools["set_color"].input_schema["properties"]["color"]
    assert (color["type"], color["maxLength"]) == ("string", 16)
    assert "#rrggbb" in color["description"]
    assert tools["set_color"].input_schema["required"] == ["color"]
    first = tools["set_color"].input_schema["properties"]["first"]
    assert (first["minimum"], first["maximum"]) == (0, 7)
    percent = tools["set_progress"].input_schema["properties"]["percent"]
    assert (percent["minimum"], percent["maximum"]) == (0, 100)
    name = tools["show_pattern"].input_schema["properties"]["name"]
    assert name["enum"] == ["rainbow", "scanner", "breathe", "heartbeat", "blink"]
    assert tools["flash_alert"].input_schema["properties"]["seconds"]["maximum"] == 300


@pytest.mark.parametrize(
    ("tool", "arguments", "level", "name", "pixel0"),
    [
        ("set_color", {"color": "#ff8800", "first": 0, "last": 1}, "manual", "color", {"color": "#ff8800"}),
        ("set_progress", {"percent": 25, "color": "blue"}, "manual", "progress", {"color": "#0000ff"}),
        ("pulse_success", {}, "pulse", "success", None),
        ("pulse_error", {}, "pulse", "error", None),
        ("flash_alert", {"color": "yellow", "seconds": 5}, "alert", "flash", {"color": "#ffdc00"}),
        ("show_pattern", {"name": "rainbow"}, "manual", "rainbow", None),
    ],
)
async def test_each_tool_changes_what_get_state_reports(led_client, tool, arguments, level, name, pixel0):
    async with Client(build_server(led_client)) as client:
        assert (await call(client, "get_state"))["shown"] == "nothing: the strip is off"
        answer = await call(client, tool, arguments)
        state = await call(client, "get_state")
    assert answer["layers"][0]["level"] == level
    assert state["layers"][0]["level"] == level
    assert state["layers"][0]["name"] == name
    assert state["shown"].startswith(f"{level} layer: {name}")
    assert len(state["pixels"]) == 8
    if pixel0 is not None:
        assert state["pixels"][0]["color"] == pixel0["color"]
    if tool == "set_progress":
        assert [p["color"] for p in state["pixels"]] == ["#0000ff"] * 2 + ["#000000"] * 6
    if tool in {"pulse_success", "pulse_error", "flash_alert"}:
        assert state["layers"][0]["expires_in_s"] > 0


async def test_show_pattern_with_colour_and_time_limit_then_clear(led_client):
    async with Client(build_server(led_client)) as client:
        shown = await call(client, "show_pattern", {"name": "scanner", "color": "green", "seconds": 30})
        assert shown["layers"][0] | {"expires_in_s": None} == {
            "level": "manual",
            "name": "scanner",
            "source": None,
            "pattern": "scanner",
            "color": "#00ff00",
            "expires_in_s": None,
            "detail": "",
        }
        assert shown["layers"][0]["expires_in_s"] == 30
        await call(client, "pulse_error")
        cleared = await call(client, "clear")
    assert cleared["layers"] == []
    assert cleared["pixels"] == [OFF] * 8


async def test_changes_under_an_appliance_alert_say_they_are_hidden(led_client):
    await led_client.signal("systemd", "service_down", ttl=60, detail="nginx.service failed")
    async with Client(build_server(led_client)) as client:
        answer = await call(client, "set_color", {"color": "blue"})
        cleared = await call(client, "clear")
    assert answer["note"] == "your change is set but hidden while the alert layer 'service_down' is shown"
    assert answer["shown"] == "alert layer: service_down from systemd (nginx.service failed), blink #ff0000"
    assert answer["pixels"][0] == {"color": "#ff0000", "brightness": 0.5}  # blink starts lit
    assert [layer["source"] for layer in cleared["layers"]] == ["systemd"]  # clear leaves status signals


@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("set_color", {"color": "blurple"}, "unknown colour 'blurple'"),
        ("set_color", {"color": "red", "first": 6, "last": 2}, "first (6) is after last (2)"),
        ("set_color", {"color": "red", "last": 8}, "less than or equal to 7"),
        ("set_progress", {"percent": 120}, "less than or equal to 100"),
        ("show_pattern", {"name": "disco"}, "rainbow"),
        ("flash_alert", {"seconds": 3600}, "less than or equal to 300"),
    ],
)
async def test_bad_arguments_are_tool_errors(led_client, tool, arguments, fragment):
    async with Client(build_server(led_client)) as client:
        result = await client.call_tool(tool, arguments)
        state = await call(client, "get_state")
    assert result.is_error
    assert fragment in text_of(result)
    assert "Traceback" not in text_of(result)
    assert state["layers"] == []


@pytest.mark.parametrize("tool", sorted(TOOLS))
async def test_a_missing_daemon_is_a_tool_error_naming_the_socket(sock_dir, tool):
    missing = sock_dir / "missing.sock"
    arguments = {"set_color": {"color": "red"}, "set_progress": {"percent": 5}, "show_pattern": {"name": "breathe"}}
    async with Client(build_server(LedClient(missing, timeout=1))) as client:
        result = await client.call_tool(tool, arguments.get(tool, {}))
    assert result.is_error
    assert f"LED daemon unavailable at {missing}" in text_of(result)
    assert "Traceback" not in text_of(result)


def test_settings_defaults_and_refusals():
    settings = server_settings("leds", ProcessConfig())
    assert isinstance(settings, Settings)
    assert (settings.port, settings.socket) == (None, Path("/run/claw-leds/leds.sock"))
    with pytest.raises(ValidationError):
        Settings.model_validate({"sockt": "/tmp/x"})
    with pytest.raises(ValidationError):
        Settings.model_validate({"port": 70000})


async def test_create_talks_to_the_configured_socket(led_client):
    server = create(Settings(socket=led_client.socket_path))
    async with Client(server) as client:
        await call(client, "set_color", {"color": "pink", "brightness": 0.6})
    assert (await led_client.get())["pixels"][4] == [*COLORS["pink"], 0.6]
