"""A ThreadWeaver console with one machine client (``claw-mcp``), served for the services that post to its
``/notifications`` (reminders, swarm incidents), and what a logged-in console reads back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.threadweaver.__main__ import build_console, build_gateway
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.console import Console
from fastapi import FastAPI

from tests.mcp.serving import asgi_served
from tests.threadweaver.console_login import PASSWORD, sessions

KEY = "sk-tw-claw-mcp-0123456789abcdef"


def console_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FastAPI, Console]:
    """A console with no provider and one gateway client, ``claw-mcp`` (KEY): the one the MCP servers post as."""
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "cd" * 32)
    (tmp_path / "mcp.key").write_text(KEY + "\n")
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "gateway": {"clients": {"claw-mcp": {"key_file": str(tmp_path / "mcp.key"), "providers": []}}},
        }
    )
    console = build_console(settings)
    return create_app(console, sessions(), gateway=build_gateway(settings, console)), console


@asynccontextmanager
async def served_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> AsyncIterator[str]:
    """That console on a loopback port (HTTPS with ``ssl_certfile`` and ``ssl_keyfile``): its base URL."""
    app, console = console_app(tmp_path, monkeypatch)
    try:
        async with asgi_served(app, **options) as url:
            yield url
    finally:
        console.store.close()


async def listed(console: str, verify: Any = True) -> list[dict[str, Any]]:
    """The notifications a console session sees, newest first (``verify``: httpx's, for an HTTPS console)."""
    async with httpx.AsyncClient(base_url=console, timeout=10, verify=verify) as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        answer = await http.get("/notifications", headers={"Authorization": f"Bearer {token}"})
    return answer.json()["notifications"]
