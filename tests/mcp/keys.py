"""Client keys for the tests that serve over HTTP: every HTTP request needs one (``clients`` in mcp.yml)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from claw.mcp.client import keyed_transport
from mcp import Client

# One client that may use every tool of every server, as the appliance's OpenClaw does.
KEY = "test-client-key-0123456789abcdefghijklmnopqrstuvwxyz"
EVERYTHING = {name: "*" for name in ("leds", "system", "crush", "time", "files", "swarm")}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clients(**extra: dict[str, Any]) -> dict[str, Any]:
    """A ``clients`` section: ``tester`` (KEY, everything) and any further ones given as name -> settings."""
    return {"tester": {"key_sha256": digest(KEY), "servers": EVERYTHING}, **extra}


def clients_yaml(**extra: dict[str, Any]) -> str:
    import json

    return f"clients: {json.dumps(clients(**extra))}\n"


def write_key(path: Path, key: str = KEY) -> Path:
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def keyed(url: str, key: str | None = KEY, **kwargs: Any) -> Client:
    """An SDK client that sends ``key`` (KEY by default) on every request."""
    return Client(keyed_transport(url, key), **kwargs)
