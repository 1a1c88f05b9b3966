"""A streamable HTTP transport to a claw MCP server that sends the caller's client key on every request.

``Client(keyed_transport(url, key))`` instead of ``Client(url)``: the service refuses requests without a key
(401). The HTTP client is made and closed with the transport.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def read_key(path: Path) -> str:
    """A client key from its file (surrounding whitespace dropped); OSError when it cannot be read."""
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise OSError(f"{path} is empty")
    return key


@contextlib.asynccontextmanager
async def keyed_transport(url: str, key: str | None) -> AsyncIterator[object]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams
