"""The claw MCP servers' settings and the process-wide configuration file, validated.

Each server module exposes a pydantic ``Settings`` model (unknown keys are refused) and
``create(settings) -> MCPServer``. Modules are imported only when their server is started, so ``claw mcp time``
does not pay for the others.

Ports have no defaults: ``metrics_port`` and each served server's ``port`` come from the file (the mcp_servers role
renders them from ``appliance_services``) or ``--set port=N``, and :func:`require_ports` refuses to serve over HTTP
without them. Over stdio no port is read, so a desktop client needs no file at all.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from claw.mcp.servers import DEFAULT_CONFIG, DEFAULT_HOST, SERVERS, ConfigError, ServerInfo


class ProcessConfig(BaseModel):
    """The top of /etc/claw/mcp.yml: where the process listens and each enabled server's settings."""

    model_config = ConfigDict(extra="forbid")

    host: str = DEFAULT_HOST
    # The shared /metrics over HTTP; required to serve over HTTP (require_ports), unused over stdio.
    metrics_port: int | None = Field(None, gt=0, lt=65536)
    servers: dict[str, dict[str, Any]] = Field(default_factory=dict)


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


def server_settings(name: str, config: ProcessConfig, overrides: dict[str, str] | None = None) -> BaseModel:
    """Validate one server's settings: the file's section, then ``--set key=value`` overrides on top."""
    module = load_module(name)
    raw = {**config.servers.get(name, {}), **(overrides or {})}
    try:
        return module.Settings.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"server {name}: {_first_error(err)}") from None


def require_ports(config: ProcessConfig, settings: dict[str, BaseModel], source: str, *, one: bool = False) -> None:
    """Refuse to serve over HTTP without ``metrics_port`` or a server's ``port``; ``source`` names the file to set
    them in, ``one``: a single server (``claw mcp NAME --http``), which ``--set port=N`` may also give its port."""
    if config.metrics_port is None:
        raise ConfigError(
            f"metrics_port: required to serve over HTTP (the servers' shared /metrics); set it in {source}"
        )
    for name, server in settings.items():
        if getattr(server, "port", None) is None:
            where = f"{source} or with --set port=PORT" if one else source
            raise ConfigError(f"servers.{name}.port: required to serve {name} over HTTP; set it in {where}")


def check_ports(config: ProcessConfig, settings: dict[str, BaseModel]) -> None:
    """Refuse two servers, or a server and the metrics endpoint, on one port (the second would fail to bind)."""
    owners: dict[int, str] = {} if config.metrics_port is None else {config.metrics_port: "metrics_port"}
    for name, server in settings.items():
        port = getattr(server, "port", None)
        if port is None:
            continue
        if port in owners:
            raise ConfigError(f"servers {owners[port]} and {name} share port {port}; each needs its own")
        owners[port] = name


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"
