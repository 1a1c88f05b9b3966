"""``claw mcp NAME --stdio`` relayed to the running MCP service: one instance for every client, a light start.

The service is a real ``claw mcp serve`` process with the time server; the stdio side is the official SDK's
client spawning ``claw mcp time --stdio``, or raw JSON-RPC lines where the test needs to see the wire.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.mcp.relay import sse_messages
from mcp import Client, StdioServerParameters

from tests.mcp.keys import clients_yaml, keyed, write_key
from tests.mcp.test_mcp_runtime import claw_command, free_port

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@dataclass
class Service:
    config: Path
    port: int
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            claw_command("mcp", "serve", "--config", str(self.config)), stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1)
                httpx.get(f"http://127.0.0.1:{self.port}/mcp", timeout=1)
                return
            except httpx.TransportError:
                assert self.process.poll() is None, "claw mcp serve exited"
                assert time.monotonic() < deadline, "claw mcp serve did not listen within 30 s"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def calls(self, tool: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        prefix = f'claw_mcp_tool_calls_total{{server="time",tool="{tool}"}} '
        return next((float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    # The relays these tests spawn inherit the environment: they send the tester's key.
    monkeypatch.setenv("CLAW_MCP_KEY_FILE", str(write_key(tmp_path / "client.key")))
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "mcp.yml"
    database = tmp_path / "reminders.sqlite3"
    config.write_text(
        f"metrics_port: {metrics_port}\nservers:\n  time: {{port: {port}, database: '{database}', zone: UTC}}\n"
        + clients_yaml()
    )
    served = Service(config, port, metrics_port)
    served.start()
    yield served
    served.stop()


def stdio_params(*args: str) -> StdioServerParameters:
    command = claw_command("mcp", "time", "--stdio", *args)
    return StdioServerParameters(command=command[0], args=command[1:], env={**os.environ})


class RawSession:
    """``claw mcp time --stdio`` driven line by line."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            claw_command("mcp", "time", "--stdio", "--config", str(config)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the relay closed stdout: {self.process.stderr.read().decode() if self.process.stderr else ''}"
        return json.loads(line)

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(15)


def test_sse_messages_join_data_lines_and_skip_events_without_data():
    stream = [b"id: 1\r\n", b"data:\r\n", b"\r\n", b"event: message\n", b'data: {"a":\n', b"data: 1}\n", b"\n"]
    assert list(sse_messages(iter(stream))) == [b'{"a":\n1}']
    assert list(sse_messages(iter([b"data: {}\n"]))) == [b"{}"]  # a stream cut before its blank line


async def test_stdio_client_reaches_the_running_service(service: Service):
    async with Client(stdio_params("--config", str(service.config))) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"current_time", "create_reminder", "list_reminders"} <= tools
        created = await client.call_tool("create_reminder", {"message": "Stretch", "in_seconds": 600})
        assert not created.is_error, created.content
    # The call was served by the service: its metrics counted it, and an HTTP client sees the same reminder.
    assert service.calls("create_reminder") == 1.0
    async with keyed(f"http://127.0.0.1:{service.port}/mcp") as client:
        listed = await client.call_tool("list_reminders", {})
    assert [r["message"] for r in listed.structured_content["reminders"]] == ["Stretch"]


async def test_standalone_serves_in_its_own_process(service: Service):
    async with Client(stdio_params("--config", str(service.config), "--standalone")) as client:
        result = await client.call_tool("current_time", {})
        assert not result.is_error
    assert service.calls("current_time") == 0.0


async def test_a_stopped_service_means_a_server_of_its_own(service: Service):
    service.stop()
    async with Client(stdio_params("--config", str(service.config))) as client:
        result = await client.call_tool("day_of_week", {"date": "2026-11-21"})
    assert not result.is_error
    assert "Saturday" in json.dumps(result.structured_content)


def test_relay_answers_a_failed_service_with_an_error_for_that_request(service: Service):
    session = RawSession(service.config)
    try:
        session.send(INITIALIZE)
        assert session.receive()["result"]["serverInfo"]["name"]
        session.send(INITIALIZED)
        session.send({"jsonrpc": "2.0", "id": 2, "method": "not json at all"})
        refused = session.receive()
        assert refused["id"] == 2 and refused["error"]["code"] == -32601  # the server's own "method not found"

        service.stop()
        session.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        down = session.receive()
        assert down["id"] == 3
        assert "claw MCP service at http://127.0.0.1:" in down["error"]["message"]

        # A restarted service has forgotten the session: the client is told to reconnect.
        service.start()
        session.send({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
        gone = session.receive()
        assert gone["id"] == 4
        assert "HTTP 404" in gone["error"]["message"] and "reconnect" in gone["error"]["message"]
    finally:
        assert session.close() == 0


def test_relay_refuses_a_line_that_is_not_json(service: Service):
    session = RawSession(service.config)
    try:
        session.process.stdin.write(b"{not json\n")  # type: ignore[union-attr]
        session.process.stdin.flush()  # type: ignore[union-attr]
        error = session.receive()
        assert error["id"] is None and error["error"]["code"] == -32700
    finally:
        assert session.close() == 0


def test_only_the_chosen_subcommand_is_imported():
    code = (
        "import sys; from claw.cli import main; main(['mcp', 'check', '--config', sys.argv[1]]); "
        "print(sorted(sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, os.devnull], capture_output=True, text=True, check=False)
    modules = done.stdout.splitlines()[-1]
    assert "claw.mcp.cli" in modules
    assert "claw.leds.cli" not in modules and "claw.status.cli" not in modules
    assert "'mcp'" not in modules  # the SDK is not needed to check a configuration


def test_version_is_printed_on_stdout():
    done = subprocess.run(claw_command("--version"), capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("claw ") and done.stdout.strip().split()[-1][0].isdigit()
