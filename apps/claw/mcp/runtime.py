"""What every claw MCP server shares: tool annotations, error mapping, per-tool metrics and the HTTP runner.

A server module exposes ``build_server(settings) -> MCPServer`` and a pydantic ``Settings`` model; the registry
(:mod:`claw.mcp.registry`) names them, and ``claw mcp`` runs one over stdio or several over loopback HTTP in one
process (one interpreter for all five keeps the appliance inside its memory budget).

Over HTTP every request names its client: ``Authorization: Bearer <key>``, checked (:class:`ClientAuth`) against
the SHA-256 of each configured client's key before the SDK sees the request, so an anonymous or wrong key gets a
401 and never a session. A known client gets only the servers and tools of its allow-list (:class:`ToolAccess`
hides the others from tools/list and refuses them as a call), a bounded number of sessions (its oldest is ended
for a new one) and, on the files server, its own root. Over stdio there is one user, the one who started the
process, and no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import ipaddress
import json
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ListToolsResult, ToolAnnotations
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app

# Hints for clients deciding what needs a confirmation. Nothing in the claw servers reaches the open world
# except the crush bridge, which declares its own.
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CREATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
UPDATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
OVERWRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
DELETE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

# Latency buckets sized for tools that answer in microseconds to a few seconds (a model pull reports progress).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNKNOWN_TOOL = "_unknown"


@contextlib.contextmanager
def tool_errors(*anticipated: type[Exception]) -> Iterator[None]:
    """Report an anticipated failure as a tool error: its one-line message reaches the model, no traceback."""
    try:
        yield
    except anticipated as err:
        raise ToolError(str(err)) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ToolMetrics:
    """Calls, errors and latency per server and tool, in one registry the whole process shares."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("server", "tool")
        self.calls = Counter("claw_mcp_tool_calls", "Tool calls received", labels, registry=self.registry)
        self.errors = Counter(
            "claw_mcp_tool_errors", "Tool calls that ended in a tool or protocol error", labels, registry=self.registry
        )
        self.latency = Histogram(
            "claw_mcp_tool_duration_seconds",
            "Time from a tools/call request to its result",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def instrument(self, server: MCPServer) -> MCPServer:
        """Add a middleware to ``server`` that counts every tools/call by tool name."""
        server.middleware.append(_ToolCallObserver(self, server))
        return server


class _ToolCallObserver:
    def __init__(self, metrics: ToolMetrics, server: MCPServer) -> None:
        self._metrics = metrics
        self._server = server
        self._known: frozenset[str] | None = None

    async def _tool_label(self, ctx: ServerRequestContext) -> str:
        # Only registered names become label values, so a client cannot grow the series without bound.
        if self._known is None:
            self._known = frozenset(tool.name for tool in await self._server.list_tools())
        name = ctx.params.get("name") if ctx.params else None
        return name if isinstance(name, str) and name in self._known else UNKNOWN_TOOL

    async def __call__(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        labels = (self._server.name, await self._tool_label(ctx))
        self._metrics.calls.labels(*labels).inc()
        started = time.perf_counter()
        failed = True
        try:
            result = await call_next(ctx)
            failed = _is_error_result(result)
            return result
        finally:
            self._metrics.latency.labels(*labels).observe(time.perf_counter() - started)
            if failed:
                self._metrics.errors.labels(*labels).inc()


def _is_error_result(result: HandlerResult) -> bool:
    if isinstance(result, dict):
        return bool(result.get("isError"))
    return bool(getattr(result, "is_error", False))


# -- who is calling ------------------------------------------------------------------------------------------

ALL_TOOLS = "*"
# The client a tool call runs for, set by ToolAccess around the call (None over stdio and in-process).
CURRENT_CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("claw_mcp_client", default=None)


def key_digest(key: str) -> str:
    """The SHA-256 (hex) of a client key, which is all the server keeps of it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """One configured client: the digest of its key, and per server the tools it may use (``ALL_TOOLS``)."""

    name: str
    digest: str
    tools: Mapping[str, frozenset[str]]
    max_sessions: int = 8

    def allows(self, server: str, tool: str) -> bool:
        allowed = self.tools.get(server)
        return allowed is not None and (ALL_TOOLS in allowed or tool in allowed)


class Callers:
    """The configured clients, found by key in constant time (every digest is compared, whichever matches)."""

    def __init__(self, callers: Sequence[Caller]) -> None:
        self._callers = {caller.name: caller for caller in callers}

    def __bool__(self) -> bool:
        return bool(self._callers)

    def get(self, name: str | None) -> Caller | None:
        return None if name is None else self._callers.get(name)

    def identify(self, authorization: str | None) -> Caller | None:
        if not authorization:
            return None
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        digest = key_digest(key.strip())
        found = None
        for caller in self._callers.values():
            if hmac.compare_digest(caller.digest, digest):
                found = caller
        return found


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(
    send: Callable[..., Any], status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Sessions:
    """A client's open sessions on one server, least recently used first."""

    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)


class ClientAuth:
    """ASGI wrapper of one server's app: a client key on every request, before the SDK sees it.

    No key or an unknown one: 401, and nothing is allocated for the request. A client whose allow-list does not
    name this server: 403. A known client's request reaches the SDK as its ``user``, so the SDK refuses a session
    to any other client (404, as for an unknown session). A client opening one session more than it may have on
    this server has its least recently used session ended first.
    """

    def __init__(self, app: Any, server: MCPServer, callers: Callers) -> None:
        self.app = app
        self.server = server
        self.callers = callers
        self._sessions: dict[str, _Sessions] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller = self.callers.identify(_header(scope, b"authorization"))
        if caller is None:
            await _refuse(
                send,
                401,
                "a client key is required: send 'Authorization: Bearer <key>' with a key from /etc/claw/mcp.yml's "
                "clients",
                [(b"www-authenticate", b'Bearer realm="claw-mcp"')],
            )
            return
        if self.server.name not in caller.tools:
            await _refuse(send, 403, f"client {caller.name} may not use the {self.server.name} server")
            return
        scope = {
            **scope,
            "user": AuthenticatedUser(AccessToken(token="", client_id=caller.name, scopes=[])),
        }
        sessions = self._sessions.setdefault(caller.name, _Sessions())
        session_id = _header(scope, b"mcp-session-id")
        if session_id is not None:
            if session_id in sessions.ids:
                sessions.ids.move_to_end(session_id)
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        await self._make_room(caller, sessions)

        async def remember(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                for key, value in message.get("headers", ()):
                    if key.lower() == b"mcp-session-id":
                        sessions.ids[value.decode("latin-1")] = None
            await send(message)

        await self.app(scope, receive, remember)

    def _open(self) -> dict[str, Any]:
        try:
            return self.server.session_manager._server_instances
        except RuntimeError:
            return {}

    async def _make_room(self, caller: Caller, sessions: _Sessions) -> None:
        open_now = self._open()
        for session_id in [sid for sid in sessions.ids if sid not in open_now]:
            del sessions.ids[session_id]  # ended by the client or by its idle timeout
        while len(sessions.ids) >= caller.max_sessions:
            oldest, _ = sessions.ids.popitem(last=False)
            transport = open_now.get(oldest)
            if transport is not None:
                await self.server.session_manager._discard_session(oldest, transport)

    def session_count(self, client: str) -> int:
        open_now = self._open()
        return sum(1 for sid in self._sessions.get(client, _Sessions()).ids if sid in open_now)


def request_client(ctx: ServerRequestContext) -> str | None:
    """The client an HTTP request was authenticated as (None over stdio and in-process)."""
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, Mapping) else None
    return user.username if isinstance(user, AuthenticatedUser) else None


class ToolAccess:
    """Middleware: a client sees and calls only its allow-listed tools; the call runs with CURRENT_CLIENT set."""

    def __init__(self, server: MCPServer, callers: Callers) -> None:
        self._server = server
        self._callers = callers

    async def __call__(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        name = request_client(ctx)

        if name is None:
            return await call_next(ctx)
        caller = self._callers.get(name)
        server = self._server.name
        if ctx.method == "tools/call":
            tool = ctx.params.get("name") if ctx.params else None
            if caller is None or not isinstance(tool, str) or not caller.allows(server, tool):
                raise MCPError(INVALID_PARAMS, f"client {name} may not call {server} tool {tool!r}")
        token = CURRENT_CLIENT.set(name)
        try:
            result = await call_next(ctx)
        finally:
            CURRENT_CLIENT.reset(token)
        if ctx.method != "tools/list":
            return result

        def allowed(tool: Any) -> bool:
            name = tool.get("name") if isinstance(tool, dict) else getattr(tool, "name", None)
            return caller is not None and isinstance(name, str) and caller.allows(server, name)

        # The SDK's own middleware may already have turned the result into its wire form (a dict).
        if isinstance(result, ListToolsResult):
            return result.model_copy(update={"tools": [tool for tool in result.tools if allowed(tool)]})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {**result, "tools": [tool for tool in result["tools"] if allowed(tool)]}
        return result


def guard(server: MCPServer, callers: Callers) -> MCPServer:
    """Add ToolAccess to ``server``'s middleware (before :meth:`ToolMetrics.instrument`, so it runs outside it)."""
    server.middleware.append(ToolAccess(server, callers))
    return server


# -- serving ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One server listening for streamable HTTP on a loopback port."""

    server: MCPServer
    port: int
    # One JSON body per answer instead of an event stream; only for servers whose tools report no progress.
    json_response: bool = False


@dataclass(frozen=True)
class SessionLimits:
    """Sessions one server keeps open in all (the SDK refuses more with 503), and how long an idle one lives."""

    max_sessions: int = 32
    idle_timeout_s: float = 600.0


def http_app(endpoint: Endpoint, callers: Callers, host: str, limits: SessionLimits) -> ClientAuth:
    """One server's ASGI app: the SDK's streamable HTTP app behind ClientAuth."""
    app = endpoint.server.streamable_http_app(
        host=host,
        json_response=endpoint.json_response,
        max_sessions=limits.max_sessions,
        session_idle_timeout=limits.idle_timeout_s,
    )
    return ClientAuth(app, endpoint.server, callers)


async def serve_http(
    endpoints: Sequence[Endpoint],
    metrics: ToolMetrics,
    host: str,
    metrics_port: int,
    callers: Callers,
    limits: SessionLimits | None = None,
) -> None:
    """Serve every endpoint and the shared /metrics in one event loop until the process is told to stop."""
    import uvicorn

    if not is_loopback(host):
        raise ValueError(f"{host} is not a loopback address; the MCP servers only listen on loopback")
    if not callers:
        raise ValueError("no MCP clients are configured; over HTTP every request needs a client key")
    limits = limits or SessionLimits()
    apps: list[tuple[Any, int]] = [(http_app(endpoint, callers, host, limits), endpoint.port) for endpoint in endpoints]
    apps.append((make_asgi_app(registry=metrics.registry), metrics_port))

    class _SharedSignals(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # one handler below stops every server

    servers = [
        _SharedSignals(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="auto"))
        for app, port in apps
    ]
    # uvicorn's own handlers would let only the last server see SIGTERM; one handler stops them all.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop, servers)
    await asyncio.gather(*(server.serve() for server in servers))


def _stop(servers: Sequence[Any]) -> None:
    for server in servers:
        server.should_exit = True
