"""The claw MCP servers by name, and where the running service serves one (no pydantic here).

Their ports are the configuration's (``servers.NAME.port`` and ``metrics_port`` in /etc/claw/mcp.yml, which the
mcp_servers role renders from ``appliance_services``): nothing here knows a default one. Over stdio a server
needs no port.

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
    # Whether a tool reports progress while it runs: over HTTP such a server answers with an event stream, the
    # others with one JSON body (no stream to set up per call).
    streams_progress: bool = False


SERVERS: dict[str, ServerInfo] = {
    "leds": ServerInfo("claw.mcp.leds"),
    "system": ServerInfo("claw.mcp.system"),
    "crush": ServerInfo("claw.mcp.crush", streams_progress=True),
    "time": ServerInfo("claw.mcp.time"),
    "files": ServerInfo("claw.mcp.files"),
    "swarm": ServerInfo("claw.mcp.swarm"),
}


def configured_endpoint(path: Path | None, name: str) -> tuple[str, int] | None:
    """(host, port) where the configuration has the service serve ``name``; None when it does not (no section or
    no port for it), or when the file cannot be read as one (the full validation in :mod:`claw.mcp.registry` then
    says what is wrong)."""
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
    port = section.get("port") if isinstance(section, dict) else None
    host = raw.get("host", DEFAULT_HOST)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536 or not isinstance(host, str):
        return None
    return host, port
