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

from tests.external.mcp_service import free_port, running_service
from tests.external.test_inspector_stdio import EXPECTED_TOOLS, fake_engine, led_socket, workdir  # noqa: F401 (fixtures)
from tests.mcp.keys import clients, digest, keyed, write_key

pytestmark = pytest.mark.anyio
TW_KEY = "threadweaver-key-" + "k" * 40

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
    tw = {"key_sha256": digest(TW_KEY), "servers": {"time": "*", "files": ["list_directory", "read_file"]}}
    everything = {"host": "127.0.0.1", "metrics_port": metrics_port, "servers": servers}
    config.write_text(json.dumps({**everything, "clients": clients(threadweaver={**tw, "files_root": "tw"})}))
    with running_service(config, [*ports.values(), metrics_port]):
        yield {"ports": ports, "metrics_port": metrics_port}


@pytest.mark.parametrize("name", list(CALLS))
async def test_server_lists_and_calls_over_streamable_http(service: dict[str, Any], name: str) -> None:
    async with keyed(f"http://127.0.0.1:{service['ports'][name]}/mcp") as client:
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
    async with keyed(f"http://127.0.0.1:{service['ports']['files']}/mcp") as client:
        result = await client.call_tool("write_file", {"path": "effects.txt", "content": "seen\n"})
    assert not result.is_error
    assert (workdir / "sandbox" / "effects.txt").read_text() == "seen\n"
    async with keyed(f"http://127.0.0.1:{service['ports']['leds']}/mcp") as client:
        result = await client.call_tool("set_color", {"color": "red", "first": 7, "last": 7})
    assert not result.is_error
    state = LedClient(led_socket).request_sync("get")
    assert tuple(state["pixels"][7][:3]) == (255, 0, 0)


@pytest.mark.parametrize("name", list(CALLS))
def test_anonymous_requests_are_refused_on_every_server(service: dict[str, Any], name: str) -> None:
    url = f"http://127.0.0.1:{service['ports'][name]}/mcp"
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    for headers in ({}, {"Authorization": "Bearer not-a-client-key-but-long-enough-to-look-like-one"}):
        answer = httpx.post(url, json=initialize, headers={"Accept": "application/json, text/event-stream", **headers})
        assert answer.status_code == 401, answer.text
        assert "mcp-session-id" not in answer.headers


async def test_threadweaver_calls_with_its_key_and_sees_only_its_tools(
    service: dict[str, Any],
    workdir: Path,  # noqa: F811
) -> None:
    from claw.threadweaver.config import McpConfig

    key_file = write_key(workdir / "threadweaver-mcp.key", TW_KEY)
    urls = {name: f"http://127.0.0.1:{service['ports'][name]}/mcp" for name in ("time", "files", "system")}
    config = McpConfig.model_validate({"servers": {name: {"url": url} for name, url in urls.items()}})
    # Without its key every server is unavailable (401), and the turn goes on without tools.
    listing = await config.catalogue().listing()
    assert [(s.name, s.available) for s in listing.servers] == [("time", False), ("files", False), ("system", False)]
    assert "a client key is required" in (listing.servers[0].error or "")

    catalogue = config.model_copy(update={"key_file": key_file}).catalogue()
    listing = await catalogue.listing()
    available = {s.name: s.available for s in listing.servers}
    assert available == {"time": True, "files": True, "system": False}  # system: not in its allow-list (403)
    assert {name for name in listing.tools if name.startswith("files__")} == {
        "files__list_directory",
        "files__read_file",
    }
    (workdir / "sandbox" / "tw").mkdir(exist_ok=True)
    (workdir / "sandbox" / "tw" / "note.txt").write_text("for threadweaver\n")
    outcome = await catalogue.call(listing, "files__read_file", {"path": "note.txt"})
    assert "for threadweaver" in outcome.content, outcome
    outcome = await catalogue.call(listing, "time__day_of_week", {"date": "2026-11-21"})
    assert "Saturday" in outcome.content, outcome
