"""The tool catalogue: the MCP servers' tools offered to models, each with its approval policy, and calling them.

Tools are named ``server__tool`` for models (a server name never contains ``__``, so the first ``__`` splits it
back). Whether a call runs on its own or waits for the user's approval follows the tool's MCP annotations: a
``readOnlyHint: true`` tool runs automatically; anything else waits, except a tool that declares
``destructiveHint: false`` when ``auto_approve_non_destructive`` is set (MCP's default for a missing
``destructiveHint`` is true). A server's ``approval: always|never`` overrides the annotations.

Each list or call opens its own short streamable HTTP session with the SDK's client: the servers are on
loopback, a session costs milliseconds, and no connection outlives the request that needed it (a restarted
server is simply found again). Tool lists are cached for ``ttl_s`` so one turn's rounds do not re-list; a server
that does not answer is not cached, so it is tried again on the next turn, and until then its tools are missing.

The MCP SDK (some 20 MiB of modules) is imported on first use, not at start, and in a worker thread (the import
takes a second, which the event loop does not wait for): a console with no MCP server configured, or not yet
asked for tools, does without it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from claw.threadweaver.providers.model import ToolSpec

if TYPE_CHECKING:
    from mcp import Client
    from mcp import types as mcp_types

log = logging.getLogger(__name__)

Approval = Literal["annotations", "always", "never"]
Outcome = Literal["ok", "error", "denied", "unavailable"]
SEPARATOR = "__"
UNKNOWN = "_unknown"  # the metrics label for a name the model made up: the series stay bounded
# What OpenAI, Anthropic and Mistral accept as a function name; a tool whose full name does not fit is left out.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ServerConfig:
    url: str
    approval: Approval = "annotations"
    # The client key the claw MCP service requires (read on every connection, so a new key needs no restart).
    key_file: Path | None = None


@dataclass(frozen=True)
class Tool:
    name: str  # server__tool, as models see it
    server: str
    tool: str
    description: str
    parameters: dict[str, Any]
    read_only: bool
    destructive: bool
    needs_approval: bool

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def public(self) -> dict[str, Any]:
        """The tool as ``GET /tools`` lists it (no schema: the UI shows names and the approval policy)."""
        return {
            "name": self.name,
            "server": self.server,
            "tool": self.tool,
            "description": self.description,
            "read_only": self.read_only,
            "destructive": self.destructive,
            "needs_approval": self.needs_approval,
        }


@dataclass(frozen=True)
class ServerStatus:
    name: str
    url: str
    available: bool
    error: str | None = None


@dataclass
class Listing:
    """Every configured server's state and the tools of those that answered, at one moment."""

    servers: list[ServerStatus] = field(default_factory=list)
    tools: dict[str, Tool] = field(default_factory=dict)

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools.values()]

    def unavailable(self, server: str) -> ServerStatus | None:
        return next((s for s in self.servers if s.name == server and not s.available), None)


@dataclass(frozen=True)
class ToolOutcome:
    """A call's result as the model gets it (``content``), flagged as an error or not, with metric labels."""

    content: str
    outcome: Outcome
    server: str = UNKNOWN
    tool: str = UNKNOWN

    @property
    def is_error(self) -> bool:
        return self.outcome != "ok"


def needs_approval(
    read_only: bool, destructive: bool, approval: Approval = "annotations", auto_non_destructive: bool = False
) -> bool:
    if approval != "annotations":
        return approval == "always"
    if read_only:
        return False
    return destructive or not auto_non_destructive


def split_name(name: str) -> tuple[str, str]:
    server, _, tool = name.partition(SEPARATOR)
    return server, tool


def describe_error(err: BaseException) -> str:
    """One line for a failure that may come wrapped in (nested) exception groups, as anyio task groups raise."""
    # Duck-typed: ExceptionGroup is built in from Python 3.11 only, and the appliance still runs 3.10.
    while len(getattr(err, "exceptions", ())) == 1:
        err = err.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(err, TimeoutError):
        return "no answer in time"
    text = str(err) or type(err).__name__
    return text.splitlines()[0]


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text blocks of a tool result, joined; structured content when there is no text; other blocks named."""
    from mcp.types import TextContent

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


def error_text(message: str) -> str:
    # Providers' tool results have no error flag that every adapter carries; the text itself must say it.
    return message if message.lower().startswith("error") else f"Error: {message}"


_sdk_loaded = False


async def _load_sdk() -> None:
    """The MCP SDK imported, the first time in a worker thread, so the event loop never waits for the import."""
    global _sdk_loaded
    if not _sdk_loaded:
        await anyio.to_thread.run_sync(_import_sdk)
        _sdk_loaded = True


def _import_sdk() -> None:
    import mcp.types  # noqa: F401
    from mcp import Client  # noqa: F401

    from claw.mcp.client import keyed_transport  # noqa: F401


class ToolCatalogue:
    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        auto_approve_non_destructive: bool = False,
        ttl_s: float = 30.0,
        timeout_s: float = 30.0,
        list_timeout_s: float = 5.0,
    ) -> None:
        self.servers = dict(servers)
        self.auto_approve_non_destructive = auto_approve_non_destructive
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        # Listing happens at the start of every turn whose cache ran out: a hung server may delay it this long.
        self.list_timeout_s = list_timeout_s
        self._cache: dict[str, tuple[float, list[Tool]]] = {}

    def _client(self, server: str) -> Client:
        # No response cache in the client: this catalogue has its own, and a client lives for one request.
        from mcp import Client  # imported already (_load_sdk)

        from claw.mcp.client import keyed_transport, read_key

        config = self.servers[server]
        key = None if config.key_file is None else read_key(config.key_file)
        return Client(keyed_transport(config.url, key), read_timeout_seconds=self.timeout_s, cache=None)

    # -- listing --------------------------------------------------------------------------------------------

    async def listing(self) -> Listing:
        """All servers' tools, each server listed concurrently (a slow one delays no other by more than its own)."""
        await _load_sdk()
        results: dict[str, ServerStatus | list[Tool]] = {}

        async def one(name: str) -> None:
            results[name] = await self._server_tools(name)

        async with anyio.create_task_group() as group:
            for name in self.servers:
                group.start_soon(one, name)
        listing = Listing()
        for name, config in self.servers.items():
            found = results[name]
            if isinstance(found, ServerStatus):
                listing.servers.append(found)
                continue
            listing.servers.append(ServerStatus(name, config.url, True))
            listing.tools.update((tool.name, tool) for tool in found)
        return listing

    async def _server_tools(self, name: str) -> ServerStatus | list[Tool]:
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        url = self.servers[name].url
        try:
            with anyio.fail_after(self.list_timeout_s):
                async with self._client(name) as client:
                    listed = await self._list_all(client)
        except Exception as err:  # any failure means "unavailable", never a failed turn
            self._cache.pop(name, None)
            reason = describe_error(err)
            log.warning("MCP server %s at %s is unavailable: %s", name, url, reason)
            return ServerStatus(name, url, False, f"MCP server {name} at {url} is unavailable: {reason}")
        tools = [tool for tool in (self._tool(name, t) for t in listed) if tool is not None]
        self._cache[name] = (time.monotonic(), tools)
        return tools

    @staticmethod
    async def _list_all(client: Client) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a server whose pages never end cannot hang a turn
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _tool(self, server: str, listed: mcp_types.Tool) -> Tool | None:
        name = f"{server}{SEPARATOR}{listed.name}"
        if not _MODEL_NAME.match(name):
            log.warning("MCP tool %r of server %s is left out: models accept [A-Za-z0-9_-]{1,64}", listed.name, server)
            return None
        hints = listed.annotations
        read_only = bool(hints and hints.read_only_hint)
        # MCP: destructiveHint defaults to true and means nothing for a read-only tool.
        destructive = not read_only and (hints is None or hints.destructive_hint is not False)
        policy = needs_approval(
            read_only, destructive, self.servers[server].approval, self.auto_approve_non_destructive
        )
        return Tool(
            name, server, listed.name, listed.description or "", dict(listed.input_schema), read_only, destructive,
            policy,
        )  # fmt: skip

    # -- calling ----------------------------------------------------------------------------------------------

    async def call(self, listing: Listing, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Call ``name`` (as the model named it); every failure is an error outcome for the model, never raised."""
        tool = listing.tools.get(name)
        if tool is None:
            return self.unknown(listing, name)
        await _load_sdk()
        try:
            with anyio.fail_after(self.timeout_s):
                async with self._client(tool.server) as client:
                    result = await client.call_tool(tool.tool, arguments)
        except Exception as err:  # the model is told, the turn goes on
            self._cache.pop(tool.server, None)
            reason = f"MCP server {tool.server} is unavailable: {describe_error(err)}"
            return ToolOutcome(error_text(reason), "unavailable", tool.server, tool.tool)
        text = result_text(result)
        if result.is_error:
            return ToolOutcome(error_text(text or "the tool failed"), "error", tool.server, tool.tool)
        return ToolOutcome(text, "ok", tool.server, tool.tool)

    def unknown(self, listing: Listing, name: str) -> ToolOutcome:
        server, _ = split_name(name)
        down = listing.unavailable(server)
        if down is not None:
            return ToolOutcome(error_text(down.error or f"MCP server {server} is unavailable"), "unavailable", server)
        known = ", ".join(sorted(listing.tools)) or "none"
        return ToolOutcome(error_text(f"unknown tool {name!r}; the tools are: {known}"), "error")
