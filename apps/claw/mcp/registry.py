"""The five claw MCP servers by name, their settings, and the process-wide configuration file.

Each server module exposes a pydantic ``Settings`` model (unknown keys are refused) and
``create(settings) -> MCPServer``. Modules are imported only when their server is started, so ``claw mcp time``
does not pay for the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONFIG = Path("/etc/claw/mcp.yml")


@dataclass(frozen=True)
class ServerInfo:
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


class ProcessConfig(BaseModel):
    """The top of /etc/claw/mcp.yml: where the process listens and each enabled server's settings."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    metrics_port: int = Field(8709, gt=0, lt=65536)
    servers: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ConfigError(ValueError):
    """The configuration file or a server's settings are not valid; the message says which key and why."""


def check_name(name: str) -> ServerInfo:
    if name not in SERVERS:
        raise ConfigError(f"unknown MCP server {name!r}; known: {', '.join(SERVERS)}")
    return SERVERS[name]


def load_module(name: str) -> ModuleType:
    return importlib.import_module(check_name(name).module)


def read_config(path: Path | None) -> ProcessConfig:
    """Read the process configuration; a missing default file means every setting at its default."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return ProcessConfig()
        path = DEFAULT_CONFIG
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    try:
        config = ProcessConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {_first_error(err)}") from None
    for name in config.servers:
        check_name(name)  # refuses unknown names early, without importing every server
    return config


def served_port(name: str, config: ProcessConfig) -> int | None:
    """The loopback port the configured MCP service serves ``name`` on, or None when it does not serve it."""
    if name not in config.servers:
        return None
    port = config.servers[name].get("port", check_name(name).port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"server {name}: port: {port!r} is not a TCP port")
    return port


def server_settings(name: str, config: ProcessConfig, overrides: dict[str, str] | None = None) -> BaseModel:
    """Validate one server's settings: the file's section, then ``--set key=value`` overrides on top."""
    module = load_module(name)
    raw = {"port": SERVERS[name].port, **config.servers.get(name, {}), **(overrides or {})}
    try:
        return module.Settings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"server {name}: {_first_error(err)}") from None


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"
