"""The MCP Inspector CLI (npm) over stdio to ``claw mcp time --stdio`` while the MCP service runs: relayed.

What a desktop client gets on an appliance: its stdio session reaches the running service (the reminder lands in
the service's database and the service's metrics count the call), not a second server of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import claw
import httpx
import pytest
from claw.mcp.reminders import ReminderStore

from tests.external.mcp_service import CLAW, free_port, running_service
from tests.external.test_inspector_stdio import CALL_TIMEOUT
from tests.mcp.keys import clients_yaml, write_key

TIME_TOOLS = {"current_time", "day_of_week", "time_until", "format_duration", "create_reminder", "list_reminders"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`claw mcp serve` with the time server, as systemd runs it on the appliance."""
    base = tmp_path_factory.mktemp("relay")
    port, metrics_port = free_port(), free_port()
    database = base / "reminders.sqlite3"
    config = base / "mcp.yml"
    config.write_text(
        f"metrics_port: {metrics_port}\nservers:\n  time: {{port: {port}, database: '{database}', zone: UTC}}\n"
        + clients_yaml()
    )
    key_file = write_key(base / "client.key")
    with running_service(config, [port, metrics_port]):
        yield {"base": base, "config": config, "database": database, "metrics_port": metrics_port, "key": key_file}


def inspect_relayed(inspector, service: dict[str, Any], *request: str) -> dict[str, Any]:
    server = [*CLAW, "mcp", "time", "--stdio", "--config", str(service["config"]), "--key-file", str(service["key"])]
    # The Inspector hands the server a minimal environment: name the claw package this test imports, so the
    # relay under test is the one that runs (a checkout's venv may point at another tree).
    apps = Path(claw.__file__).resolve().parents[1]
    command = inspector.command("--cli", "-e", f"PYTHONPATH={apps}", "--", *server, *request)
    done = subprocess.run(
        command, cwd=service["base"], capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_inspector_lists_and_calls_through_the_relay(inspector, service: dict[str, Any]) -> None:
    listed = inspect_relayed(inspector, service, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} >= TIME_TOOLS

    answer = inspect_relayed(
        inspector,
        service,
        *("--method", "tools/call", "--tool-name", "create_reminder"),
        *("--tool-arg", "message=Relayed", "in_seconds=300"),
    )
    assert not answer.get("isError"), answer
    assert answer["structuredContent"]["message"] == "Relayed"

    store = ReminderStore(Path(service["database"]))
    try:
        reminders, total = store.select("pending", 10)
    finally:
        store.close()
    assert (total, [r.message for r in reminders]) == (1, ["Relayed"])
    metrics = httpx.get(f"http://127.0.0.1:{service['metrics_port']}/metrics").text
    assert 'claw_mcp_tool_calls_total{server="time",tool="create_reminder"} 1.0' in metrics


def test_the_relay_process_does_not_load_the_mcp_sdk() -> None:
    # The relay's own modules, imported the way `claw mcp time --stdio` imports them before relaying.
    code = "import sys, claw.cli, claw.mcp.cli, claw.mcp.relay; print('mcp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
