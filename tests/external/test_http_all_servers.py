"""All five servers in one ``claw mcp serve`` process, driven by the official SDK client over streamable HTTP.

The same temporary world as the Inspector tests (an LED daemon with the simulated strip, a fake llama.cpp
engine, a sandbox, a reminders database), served the way the appliance's claw-mcp.service serves it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.leds.client import LedClient
from mcp import Client

from tests.external.mcp_service import free_port, running_service
from tests.external.test_inspector_stdio import EXPECTED_TOOLS, fake_engine, led_socket, workdir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

# server -> (a tool, its arguments, what its structured result must hold)
CALLS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "files": ("write_file", {"path": "over-http.txt", "content": "via HTTP\n"}, {}),
    "time": ("day_of_week", {"date": "2026-11-21"}, {"day_of_week": "Saturday"}),
    "system": ("uptime_and_load", {}, {}),
    "leds": ("set_color", {"color": "green", "first": 0, "last": 0}, {"backend": "simulated"}),
    "crush": ("list_models", {}, {"engine": "llamacpp"}),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def service(workdir: Path, led_socket: Path, fake_engine: Any) -> Iterator[dict[str, Any]]:  # noqa: F811
    ports = {name: free_port() for name in CALLS}
    metrics_port = free_port()
    settings = {
        "files": {"root": str(workdir / "sandbox")},
        "time": {"database": str(workdir / "time" / "http.sqlite3"), "zone": "UTC"},
        "system": {},
        "leds": {"socket": str(led_socket), "timeout": 5},
        "crush": {"engine_url": fake_engine.url, "engine": "llamacpp", "timeout_seconds": 5},
    }
    servers = {name: {**settings[name], "port": ports[name]} for name in CALLS}
    config = workdir / "http-all.yml"
    config.write_text(json.dumps({"host": "127.0.0.1", "metrics_port": metrics_port, "servers": servers}))
    with running_service(config, [*ports.values(), metrics_port]):
        yield {"ports": ports, "metrics_port": metrics_port}


@pytest.mark.parametrize("name", list(CALLS))
async def test_server_lists_and_calls_over_streamable_http(service: dict[str, Any], name: str) -> None:
    async with Client(f"http://127.0.0.1:{service['ports'][name]}/mcp") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert EXPECTED_TOOLS[name] - {"gpu_summary"} <= tools.keys()  # gpu_summary needs an exporter_url
        assert all(tool.annotations is not None for tool in tools.values())
        tool, arguments, expected = CALLS[name]
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    data = result.structured_content or {}
    assert {key: data.get(key) for key in expected} == expected
    metrics = httpx.get(f"http://127.0.0.1:{service['metrics_port']}/metrics").text
    assert f'claw_mcp_tool_calls_total{{server="{name}",tool="{tool}"}} 1.0' in metrics


async def test_effects_reach_the_sandbox_and_the_led_daemon(
    service: dict[str, Any],
    workdir: Path,  # noqa: F811
    led_socket: Path,  # noqa: F811
) -> None:
    async with Client(f"http://127.0.0.1:{service['ports']['files']}/mcp") as client:
        result = await client.call_tool("write_file", {"path": "effects.txt", "content": "seen\n"})
    assert not result.is_error
    assert (workdir / "sandbox" / "effects.txt").read_text() == "seen\n"
    async with Client(f"http://127.0.0.1:{service['ports']['leds']}/mcp") as client:
        result = await client.call_tool("set_color", {"color": "red", "first": 7, "last": 7})
    assert not result.is_error
    state = LedClient(led_socket).request_sync("get")
    assert tuple(state["pixels"][7][:3]) == (255, 0, 0)
