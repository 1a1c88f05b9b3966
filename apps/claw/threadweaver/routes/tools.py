"""``GET /tools``: the MCP servers (up or down) and the tools they offer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from claw.threadweaver.routes.deps import LOGGED_IN, Tools

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/tools")
async def tools(catalogue: Tools) -> dict[str, Any]:
    listing = await catalogue.listing()
    return {
        "servers": [asdict(server) for server in listing.servers],
        "tools": [tool.public() for tool in listing.tools.values()],
    }
