"""One MCP server served over loopback HTTP inside the test's own event loop, behind the real client-key checks.

For servers whose parts a test injects (a local unit manager, a store it fills): ``claw mcp serve`` in a subprocess
cannot take them. The app is the one the service serves (:func:`claw.mcp.runtime.http_app`, with
:func:`~claw.mcp.runtime.guard`), run by uvicorn on a free port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import uvicorn
from claw.mcp.runtime import Caller, Callers, Endpoint, SessionLimits, guard, http_app
from mcp.server.mcpserver import MCPServer

from tests.mcp.keys import digest
from tests.mcp.test_mcp_runtime import free_port


def callers(clients: Mapping[str, tuple[str, Mapping[str, str | list[str]]]]) -> Callers:
    """name -> (key, server -> '*' or tools) as the service's Callers."""
    return Callers(
        [
            Caller(
                name,
                digest(key),
                {server: frozenset(["*"] if tools == "*" else tools) for server, tools in allowed.items()},
            )
            for name, (key, allowed) in clients.items()
        ]
    )


@contextlib.asynccontextmanager
async def asgi_served(app: Any, **options: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in this event loop; yields its base URL (https when
    ``options`` name ``ssl_certfile`` and ``ssl_keyfile``)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(web.serve)
        with anyio.fail_after(10):
            while not web.started:
                await anyio.sleep(0.02)
        try:
            yield f"{'https' if 'ssl_certfile' in options else 'http'}://127.0.0.1:{port}"
        finally:
            web.should_exit = True


@contextlib.asynccontextmanager
async def served(server: MCPServer, known: Callers) -> AsyncIterator[str]:
    """Serve ``server`` for the ``known`` clients as the service does; yields its /mcp URL."""
    app = http_app(Endpoint(guard(server, known), 0, json_response=True), known, "127.0.0.1", SessionLimits())
    async with asgi_served(app) as base:
        yield f"{base}/mcp"
