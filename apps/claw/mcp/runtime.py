"""What every claw MCP server shares: tool annotations, error mapping, per-tool metrics and the HTTP runner.

A server module exposes ``build_server(settings) -> MCPServer`` and a pydantic ``Settings`` model; the registry
(:mod:`claw.mcp.registry`) names them, and ``claw mcp`` runs one over stdio or several over loopback HTTP in one
process (one interpreter for all five keeps the appliance inside its memory budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
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


@dataclass(frozen=True)
class Endpoint:
    """One server listening for streamable HTTP on a loopback port."""

    server: MCPServer
    port: int
    # One JSON body per answer instead of an event stream; only for servers whose tools report no progress.
    json_response: bool = False


async def serve_http(endpoints: Sequence[Endpoint], metrics: ToolMetrics, host: str, metrics_port: int) -> None:
    """Serve every endpoint and the shared /metrics in one event loop until the process is told to stop."""
    import uvicorn

    if not is_loopback(host):
        raise ValueError(f"{host} is not a loopback address; the MCP servers only listen on loopback")
    apps = [
        (endpoint.server.streamable_http_app(host=host, json_response=endpoint.json_response), endpoint.port)
        for endpoint in endpoints
    ]
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
