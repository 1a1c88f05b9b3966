"""The five claw MCP servers over stdio, driven by an MCP client that is not ours: the MCP Inspector CLI (npm).

Each call is one ``mcp-inspector --cli`` run: node starts the Inspector, which spawns
``python -c 'claw.cli.main()' mcp NAME --stdio ...``, initializes, makes one request and prints the result as
JSON. Everything is local: a temporary sandbox, reminder database and configuration, an LED daemon with the
simulated backend on a temporary socket, a fake llama.cpp engine and a closed port for crush, the real /proc.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from claw.leds.client import LedClient, LedDaemonUnavailable
from claw.mcp.reminders import ReminderStore

from tests.doubles.engine import FakeLlamaCpp
from tests.doubles.http import running

CLAW = [sys.executable, "-c", "import sys; from claw.cli import main; sys.exit(main())"]
CALL_TIMEOUT = 90
CONTENT = "héllo from the Inspector: a=b\nsecond line\n"
ESCAPE = "../outside/escaped.txt"

# Tools each server must list (a server may list more; crush lists gpu_summary because exporter_url is set).
EXPECTED_TOOLS = {
    "files": {
        "sandbox_path", "list_directory", "read_file", "write_file", "delete_file", "file_info", "make_directory",
    },
    "time": {
        "current_time", "day_of_week", "time_until", "format_duration", "create_reminder", "list_reminders",
        "cancel_reminder",
    },
    "system": {
        "cpu", "memory", "disk", "temperature_and_throttling", "uptime_and_load", "network", "service_status",
        "service_logs", "restart_service",
    },
    "leds": {
        "set_color", "set_progress", "pulse_success", "pulse_error", "flash_alert", "show_pattern", "clear",
        "get_state",
    },
    "crush": {"engine_health", "list_models", "loaded_models", "unload_model", "pull_model", "gpu_summary"},
}  # fmt: skip
READ_ONLY = {
    "files": {"sandbox_path", "list_directory", "read_file", "file_info"},
    "time": {"current_time", "day_of_week", "time_until", "format_duration", "list_reminders"},
    "system": {
        "cpu", "memory", "disk", "temperature_and_throttling", "uptime_and_load", "network", "service_status",
        "service_logs",
    },
    "leds": {"get_state"},
    "crush": {"engine_health", "list_models", "loaded_models", "gpu_summary"},
}  # fmt: skip
DESTRUCTIVE = {"write_file", "delete_file", "cancel_reminder", "restart_service"}  # overwrite, delete, stop
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The servers' temporary world; also the clients' working directory, so nothing depends on the repo's."""
    base = tmp_path_factory.mktemp("inspector")
    (base / "mcp.yml").write_text("{}\n")  # isolates the servers from a real /etc/claw/mcp.yml
    (base / "sandbox").mkdir()
    (base / "outside").mkdir()
    (base / "time").mkdir()
    return base


@pytest.fixture(scope="module")
def led_socket(workdir: Path) -> Iterator[Path]:
    """An LED daemon with the simulated backend, a separate process, on a temporary socket."""
    path = workdir / "leds.sock"
    assert len(str(path)) < 100, f"unix socket path too long: {path}"
    log = (workdir / "leds-daemon.log").open("w")
    command = [*CLAW, "leds", "daemon", "--socket", str(path), "--backend", "simulated", "--log-level", "WARNING"]
    daemon = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert daemon.poll() is None, f"LED daemon exited: {(workdir / 'leds-daemon.log').read_text()}"
            try:
                LedClient(path, timeout=1).request_sync("get")
                break
            except LedDaemonUnavailable:
                assert time.monotonic() < deadline, "LED daemon did not answer within 20 s"
                time.sleep(0.05)
        yield path
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
        log.close()


@pytest.fixture(scope="module")
def fake_engine() -> Iterator[Any]:
    """The crush tests' fake llama.cpp server (tests/doubles/engine.py) on a real port in this process."""
    fake = FakeLlamaCpp()
    with running(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="module")
def servers(workdir: Path, led_socket: Path, fake_engine: Any) -> dict[str, list[str]]:
    """Each server's stdio command line, settings included."""

    def claw_mcp(name: str, **settings: object) -> list[str]:
        sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
        return [*CLAW, "mcp", name, "--stdio", "--config", str(workdir / "mcp.yml"), *sets]

    closed = closed_port_url()
    return {
        "files": claw_mcp("files", root=workdir / "sandbox"),
        "time": claw_mcp("time", database=workdir / "time" / "reminders.sqlite3", zone="UTC"),
        "system": claw_mcp("system"),
        "leds": claw_mcp("leds", socket=led_socket, timeout=5),
        "crush": claw_mcp(
            "crush", engine_url=fake_engine.url, engine="llamacpp", exporter_url=f"{closed}/metrics", timeout_seconds=5
        ),
        "crush-offline": claw_mcp("crush", engine_url=closed, exporter_url=f"{closed}/metrics", timeout_seconds=5),
    }


@pytest.fixture(scope="module")
def inspect(inspector, workdir: Path):
    """Run one Inspector CLI request against a server command line; returns its JSON answer."""

    def run(server: list[str], method: str, tool: str | None = None, **tool_args: object) -> dict[str, Any]:
        request = ["--method", method]
        if tool is not None:
            request += ["--tool-name", tool]
        if tool_args:
            request += ["--tool-arg", *(f"{key}={value}" for key, value in tool_args.items())]
        # Everything after "--" is the server's command line plus the request: the Inspector's own options
        # (--config, -e) would otherwise swallow the server's.
        command = inspector.command("--cli", "--", *server, *request)
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        try:
            return json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"the Inspector printed no JSON:\n{done.stdout}\n{done.stderr}")

    return run


@pytest.fixture(scope="module")
def answers(inspect, servers: dict[str, list[str]]) -> Iterator[dict[str, Future[dict[str, Any]]]]:
    """The independent requests, started together at module setup and run two or more at a time.

    Each run is a node and a python process and takes about 2 s, mostly imports; side by side they fit the
    module into a fraction of the time. A test takes its answer with ``.result()``, which re-raises a failed run
    in that test.
    """
    requests: dict[str, tuple[str, str, str | None, dict[str, object]]] = {
        **{f"{name} tools/list": (name, "tools/list", None, {}) for name in EXPECTED_TOOLS},
        "files write": ("files", "tools/call", "write_file", {"path": "inspector.txt", "content": CONTENT}),
        "files escape": ("files", "tools/call", "write_file", {"path": ESCAPE, "content": "x"}),
        "time reminder": ("time", "tools/call", "create_reminder", {"message": "Stretch", "in_seconds": 600}),
        "system uptime": ("system", "tools/call", "uptime_and_load", {}),
        "leds color": ("leds", "tools/call", "set_color", {"color": "blue", "first": 2, "last": 4}),
        "crush health": ("crush-offline", "tools/call", "engine_health", {}),
        "crush models": ("crush", "tools/call", "list_models", {}),
    }
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        futures = {
            key: pool.submit(inspect, servers[server], method, tool, **args)
            for key, (server, method, tool, args) in requests.items()
        }
        yield futures
        for future in futures.values():
            future.cancel()


def tool_result(answer: dict[str, Any]) -> tuple[bool, str, Any]:
    """(isError, the text content, structuredContent) of a tools/call answer."""
    texts = [part["text"] for part in answer["content"] if part["type"] == "text"]
    return answer.get("isError", False), "\n".join(texts), answer.get("structuredContent")


def test_inspector_is_the_pinned_version(inspector) -> None:
    pins = json.loads((Path(__file__).resolve().parent / "inspector" / "package.json").read_text())
    assert inspector.version == pins["dependencies"]["@modelcontextprotocol/inspector"]
    lock = json.loads((Path(__file__).resolve().parent / "inspector" / "package-lock.json").read_text())
    packages = {path: entry for path, entry in lock["packages"].items() if path}
    assert lock["lockfileVersion"] == 3
    assert packages["node_modules/@modelcontextprotocol/inspector"]["version"] == inspector.version
    assert all(entry["integrity"].startswith("sha512-") for entry in packages.values())
    assert not [path for path, entry in packages.items() if "resolved" in entry]


@pytest.mark.parametrize("name", list(EXPECTED_TOOLS))
def test_tools_list(answers, name: str) -> None:
    tools = {tool["name"]: tool for tool in answers[f"{name} tools/list"].result()["tools"]}
    assert EXPECTED_TOOLS[name] <= tools.keys(), f"missing: {EXPECTED_TOOLS[name] - tools.keys()}"
    for tool_name, tool in tools.items():
        annotations = tool.get("annotations")
        assert annotations, f"{name}.{tool_name} has no annotations"
        assert all(isinstance(annotations.get(hint), bool) for hint in HINTS), f"{name}.{tool_name}: {annotations}"
        assert tool["description"], f"{name}.{tool_name} has no description"
        assert tool["inputSchema"]["type"] == "object"
        assert annotations["readOnlyHint"] is (tool_name in READ_ONLY[name]), f"{name}.{tool_name}: {annotations}"
        if annotations["readOnlyHint"]:
            assert annotations["destructiveHint"] is False
        else:
            assert annotations["destructiveHint"] is (tool_name in DESTRUCTIVE), f"{name}.{tool_name}"


def test_files_write_then_read_through_two_clients(answers, inspect, servers, workdir: Path) -> None:
    error, text, data = tool_result(answers["files write"].result())
    size = len(CONTENT.encode())
    assert (error, text, data) == (False, f"wrote {size} bytes to inspector.txt", {"result": text})
    assert (workdir / "sandbox" / "inspector.txt").read_text(encoding="utf-8") == CONTENT

    error, text, data = tool_result(inspect(servers["files"], "tools/call", "read_file", path="inspector.txt"))
    assert (error, text, data) == (False, CONTENT, {"result": CONTENT})


def test_files_path_escape_is_an_error(answers, workdir: Path) -> None:
    answer = answers["files escape"].result()
    error, text, data = tool_result(answer)
    assert error is True, answer
    assert f"{ESCAPE!r} contains '..', which is not allowed in the sandbox" in text
    assert data is None
    assert list((workdir / "outside").iterdir()) == []


def test_time_create_reminder_lands_in_the_database(answers, workdir: Path) -> None:
    error, text, data = tool_result(answers["time reminder"].result())
    assert error is False, text
    assert (data["message"], data["status"], data["zone"], data["due_in"]) == ("Stretch", "pending", "UTC", "in 10 min")
    due, created = datetime.fromisoformat(data["due"]), datetime.fromisoformat(data["created_at"])
    assert abs((due - created).total_seconds() - 600) <= 1
    assert json.loads(text) == data

    store = ReminderStore(workdir / "time" / "reminders.sqlite3")
    try:
        reminders, total = store.select("pending", 10)
    finally:
        store.close()
    assert total == 1
    assert [(r.id, r.message) for r in reminders] == [(data["id"], "Stretch")]


def test_system_uptime_and_load_reads_the_real_proc(answers) -> None:
    error, text, data = tool_result(answers["system uptime"].result())
    assert error is False, text
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert abs(data["uptime_seconds"] - uptime) < 120
    assert data["cores"] >= 1
    assert data["load_1"] >= 0 and data["total_tasks"] >= data["runnable_tasks"] >= 0


def test_leds_set_color_reaches_the_daemon(answers, led_socket: Path) -> None:
    error, text, data = tool_result(answers["leds color"].result())
    assert error is False, text
    assert data["backend"] == "simulated"
    assert [p["color"] for p in data["pixels"]] == ["#000000"] * 2 + ["#0000ff"] * 3 + ["#000000"] * 3
    assert data["layers"][0]["level"] == "manual" and data["layers"][0]["color"] == "#0000ff"

    # The daemon, asked directly after the client has gone, still shows it.
    state = LedClient(led_socket).request_sync("get")
    assert [tuple(p[:3]) for p in state["pixels"]] == [(0, 0, 0)] * 2 + [(0, 0, 255)] * 3 + [(0, 0, 0)] * 3


def test_crush_engine_health_on_a_closed_port(answers) -> None:
    error, text, data = tool_result(answers["crush health"].result())
    assert error is False, text
    # The port refuses: the host answers, nothing listens there (the engine is stopped or starting).
    assert (data["reachable"], data["ready"], data["error_code"]) == (True, False, "engine_down")
    assert "nothing listens on" in data["error"] and "stopped or still starting" in data["error"]


def test_crush_list_models_from_a_fake_engine(answers, fake_engine) -> None:
    error, text, data = tool_result(answers["crush models"].result())
    assert error is False, text
    assert data["engine"] == "llamacpp"
    assert [model["name"] for model in data["models"]] == fake_engine.served
