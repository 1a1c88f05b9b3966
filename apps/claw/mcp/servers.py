"""The five claw MCP servers by name and port, and where the running service serves one (no pydantic here).

``claw mcp NAME --stdio`` asks :func:`configured_endpoint` before anything heavy is imported: when the
service serves NAME it relays (:mod:`claw.mcp.relay`), and the settings models of :mod:`claw.mcp.registry`
are never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

DEFAULT_CONFIG = Path("/etc/claw/mcp.yml")
DEFAULT_HOST = "127.0.0.1"


class ConfigError(ValueError):
    """The configuration file or a server's settings are not valid; the message says which key and why."""


class ServerInfo(NamedTuple):
    module: str
    port: int
    # Whether a tool reports progress while it runs: over HTTP such a server answers with an event stream, the
    # others with one JSON body (no stream to set up per call).
    streams_progress: bool = False


SERVERS: dict[str, ServerInfo] = {
    "leds": ServerInfo("claw.mcp.leds", 8701),
    "system": ServerInfo("claw.mcp.system", 8702),
    "crush": ServerInfo("claw.mcp.crush", 8703, streams_progress=True),
    "time": ServerInfo("claw.mcp.time", 8704),
    "files": ServerInfo("claw.mcp.files", 8705),
}


def configured_endpoint(path: Path | None, name: str) -> tuple[str, int] | None:
    """(host, port) where the configuration has the service serve ``name``; None when it does not, or when the
    file cannot be read as one (the full validation in :mod:`claw.mcp.registry` then says what is wrong)."""
    if path is None:
        path = DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    servers = raw.get("servers") if isinstance(raw, dict) else None
    if not isinstance(servers, dict) or name not in servers or name not in SERVERS:
        return None
    section = servers[name] or {}
    port = section.get("port", SERVERS[name].port) if isinstance(section, dict) else None
    host = raw.get("host", DEFAULT_HOST)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536 or not isinstance(host, str):
        return None
    return host, port
