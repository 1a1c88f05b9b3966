"""The tools a task may offer the model, and the per-task bench that runs them and logs every call.

Harness tools: ``run_command`` (an allow-list of programs, run without a shell inside the task's workspace) and
``fetch_url`` (the fixture site only). Everything else comes from the REAL claw MCP servers (files, time, leds,
system), started in-process for each task and driven through the official MCP SDK client.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx

ALLOWED_PROGRAMS = frozenset(
    {"ls", "cat", "wc", "head", "tail", "grep", "sort", "uniq", "cut", "echo", "date", "uname", "pwd", "expr", "nproc"}
)
MAX_OUTPUT = 4000

Caller = Callable[[dict[str, Any]], Awaitable[tuple[bool, str]]]


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    call: Caller

    def schema(self) -> dict[str, Any]:
        """The tool as both Ollama and the OpenAI API take it."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolRecord:
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: str


@dataclass
class Bench:
    """One task's world: a fresh workspace, the tools on offer, the call log and handles for the checks."""

    workspace: Path
    site_url: str
    tools: dict[str, Tool] = field(default_factory=dict)
    log: list[ToolRecord] = field(default_factory=list)
    reminders: Any = None  # claw.mcp.reminders.ReminderStore when the time server runs
    leds: Any = None  # MCP client of the leds server, for reading the strip back
    site_requests: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))  # older reminders are not this task's

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        tool = self.tools.get(name)
        if tool is None:
            ok, text = False, f"unknown tool {name!r}; available: {', '.join(sorted(self.tools))}"
        else:
            try:
                ok, text = await tool.call(arguments)
            except Exception as err:  # a broken call is the model's problem, reported back to it
                ok, text = False, f"{type(err).__name__}: {err}"
        self.log.append(ToolRecord(name, arguments, ok, text[:MAX_OUTPUT]))
        return text[:MAX_OUTPUT]

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.tools.values()]

    def calls(self, *names: str, ok: bool = True) -> list[ToolRecord]:
        return [r for r in self.log if (not names or r.name in names) and (r.ok or not ok)]


def run_command_tool(workspace: Path) -> Tool:
    async def call(arguments: dict[str, Any]) -> tuple[bool, str]:
        command = str(arguments.get("command", ""))
        try:
            argv = shlex.split(command)
        except ValueError as err:
            return False, f"cannot parse the command: {err}"
        if not argv or Path(argv[0]).name not in ALLOWED_PROGRAMS:
            return False, f"not allowed; programs allowed: {', '.join(sorted(ALLOWED_PROGRAMS))}"
        if any(arg.startswith("/") or ".." in arg.split("/") for arg in argv[1:]):
            return False, "paths must stay inside the workspace (no absolute paths, no '..')"
        argv[0] = Path(argv[0]).name

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                argv, cwd=workspace, capture_output=True, text=True, timeout=10, env={"PATH": "/usr/bin:/bin"}
            )

        done = await anyio.to_thread.run_sync(run)
        return done.returncode == 0, (done.stdout + done.stderr) or f"(exit status {done.returncode}, no output)"

    return Tool(
        "run_command",
        "Run one command in the workspace (no shell, no pipes) and return its output. "
        f"Programs allowed: {', '.join(sorted(ALLOWED_PROGRAMS))}. Example: 'wc -l notes.txt'.",
        {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command line, e.g. 'ls -1'"}},
            "required": ["command"],
        },
        call,
    )


def fetch_url_tool(site_url: str) -> Tool:
    async def call(arguments: dict[str, Any]) -> tuple[bool, str]:
        url = str(arguments.get("url", ""))
        if url.startswith("/"):
            url = site_url + url
        if not url.startswith(site_url):
            return False, f"only {site_url} can be fetched in this benchmark"
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(url)
        return response.status_code < 400, f"HTTP {response.status_code}\n{response.text}"

    return Tool(
        "fetch_url",
        "Fetch a web page or API URL with HTTP GET and return the status and body.",
        {
            "type": "object",
            "properties": {"url": {"type": "string", "description": "The full URL"}},
            "required": ["url"],
        },
        call,
    )


def _mcp_tool(client: Any, tool: Any) -> Tool:
    async def call(arguments: dict[str, Any]) -> tuple[bool, str]:
        result = await client.call_tool(tool.name, arguments)
        text = "".join(block.text for block in result.content if getattr(block, "type", "") == "text")
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content)
        return not result.is_error, text

    schema = tool.input_schema or {"type": "object", "properties": {}}
    return Tool(tool.name, tool.description or "", schema, call)


async def _add_mcp(stack: contextlib.AsyncExitStack, bench: Bench, server: Any) -> Any:
    from mcp import Client

    client = await stack.enter_async_context(Client(server))
    for tool in (await client.list_tools()).tools:
        bench.tools[tool.name] = _mcp_tool(client, tool)
    return client


SOURCES = ("exec", "web", "files", "time", "leds", "system")


@dataclass(frozen=True)
class Appliance:
    """Where an agent's tools leave their effects on the appliance (the OpenClaw driver): the time server's reminder
    database and the LED daemon's socket (roles/mcp_servers); files land in the run's --workspace, and the system
    server reads the host SMEEP runs on."""

    reminders: Path = Path("/var/lib/claw-mcp/time.sqlite3")
    led_socket: Path = Path("/run/claw-leds/leds.sock")


class _LazyReminders:
    """The appliance's reminder store, opened on first use only: a task that never looks at reminders (the day of
    the week) leaves the time server's database alone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store: Any = None

    def __getattr__(self, name: str) -> Any:
        if self.store is None:
            from claw.mcp.reminders import ReminderStore

            self.store = ReminderStore(self.path)
        return getattr(self.store, name)

    def tidy(self, since: datetime) -> None:
        """Cancel what the task left pending (a reminder in 15 minutes must not fire on the appliance), then close."""
        if self.store is None:
            return
        now = datetime.now(timezone.utc)
        for reminder in self.store.select("pending", 1000)[0]:
            if reminder.created >= since:
                self.store.cancel(reminder.id, now)
        self.store.close()


def own_like_root(root: Path) -> None:
    """Seeded files get the workspace's owner, so the agent's tools (another user on the appliance) may change them."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    owner = root.stat()
    for path in root.rglob("*"):
        if path.lstat().st_uid != owner.st_uid:
            os.lchown(path, owner.st_uid, owner.st_gid)


@contextlib.asynccontextmanager
async def open_bench(
    sources: tuple[str, ...], site_url: str, workspace: Path | None = None, appliance: Appliance | None = None
) -> AsyncIterator[Bench]:
    """Start what the task needs (a fresh workspace, the real MCP servers) and tear it all down afterwards. With
    ``appliance`` the agent brings its own tools: the bench offers none and only attaches to the appliance's state
    the sources' checks read (its reminders, its LED strip)."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown tool sources: {sorted(unknown)}")
    scratch = Path(tempfile.mkdtemp(prefix="smeep-", dir="/tmp"))  # short: the LED socket path must fit
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, True)
        root = workspace or scratch / "ws"
        root.mkdir(parents=True, exist_ok=True)
        bench = Bench(root, site_url)
        if appliance is not None:
            await _attach(stack, bench, sources, appliance)
            yield bench
            return
        if "exec" in sources:
            bench.tools["run_command"] = run_command_tool(root)
        if "web" in sources:
            bench.tools["fetch_url"] = fetch_url_tool(site_url)
        if "files" in sources:
            from claw.mcp import files
            from claw.mcp.sandbox import Sandbox

            await _add_mcp(stack, bench, files.build_server(Sandbox(root, 1 << 20, 1 << 20)))
        if "time" in sources:
            from claw.mcp import time as time_server
            from claw.mcp.reminders import ReminderStore

            bench.reminders = ReminderStore(scratch / "time.sqlite3")
            stack.callback(bench.reminders.close)
            await _add_mcp(stack, bench, time_server.build_server(bench.reminders, zone="UTC"))
        if "leds" in sources:
            from claw.leds.backends import SimulatedBackend
            from claw.leds.client import LedClient
            from claw.leds.daemon import LedDaemon, LedService
            from claw.leds.state import LedState
            from claw.mcp import leds

            backend = SimulatedBackend()
            daemon = await stack.enter_async_context(
                LedDaemon(LedService(LedState(), backend.name), backend, scratch / "leds.sock")
            )
            bench.leds = await _add_mcp(stack, bench, leds.build_server(LedClient(daemon.socket_path, timeout=5)))
        if "system" in sources:
            from claw.mcp import system

            await _add_mcp(stack, bench, system.create(system.Settings(vcgencmd=None)))
        yield bench


async def _attach(stack: contextlib.AsyncExitStack, bench: Bench, sources: tuple[str, ...], where: Appliance) -> None:
    """The appliance's state for the checks: its reminders (lazily; this task's own are cancelled afterwards) and
    its LED strip, through the real leds server on the real daemon's socket, cleared first so that an earlier run's
    colours cannot pass this task."""
    if "time" in sources:
        lazy = _LazyReminders(where.reminders)
        bench.reminders = lazy
        stack.callback(lazy.tidy, bench.started)
    if "leds" in sources:
        from claw.leds.client import LedClient
        from claw.mcp import leds
        from mcp import Client

        bench.leds = await stack.enter_async_context(Client(leds.build_server(LedClient(where.led_socket, timeout=5))))
        await bench.leds.call_tool("clear", {})
