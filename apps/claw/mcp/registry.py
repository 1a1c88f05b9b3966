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
import re
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from claw.mcp.servers import DEFAULT_CONFIG, DEFAULT_HOST, SERVERS, ConfigError, ServerInfo

MIN_KEY_CHARS = 32
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ClientConfig(BaseModel):
    """One MCP client over HTTP (``clients.NAME``): its key, what it may use, its files root, its sessions."""

    model_config = ConfigDict(extra="forbid")

    # The SHA-256 (hex) of the key: all the server needs to keep (the mcp_servers role renders it).
    key_sha256: str | None = Field(None, description="SHA-256 of the client's key, lower-case hex")
    # Or the key itself, in a file the server can read (at least MIN_KEY_CHARS characters).
    key_file: Path | None = None
    # server -> the tools the client may see and call, or "*" for all of them; a server not named is refused.
    servers: dict[str, Literal["*"] | list[str]] = Field(default_factory=dict)
    # The client's directory under the files server's root ('' or absent: the whole sandbox).
    files_root: str | None = None
    max_sessions: int = Field(8, gt=0, le=1000, description="Open sessions per server; a new one ends the oldest")

    @field_validator("key_sha256")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 lower-case hex digits (the SHA-256 of the key)")
        return value

    @field_validator("servers")
    @classmethod
    def _servers(cls, servers: dict[str, Any]) -> dict[str, Any]:
        for name in servers:
            check_name(name)
        return servers

    @field_validator("files_root")
    @classmethod
    def _files_root(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or "\x00" in value:
            raise ValueError(f"{value!r} must be a relative directory under the files root, without '..'")
        return str(path) if path.parts else ""

    @model_validator(mode="after")
    def _one_key(self) -> ClientConfig:
        if (self.key_sha256 is None) == (self.key_file is None):
            raise ValueError("give exactly one of key_sha256 and key_file")
        return self

    def digest(self) -> str:
        """The key's SHA-256: given, or read from key_file (which must hold at least MIN_KEY_CHARS characters)."""
        if self.key_sha256 is not None:
            return self.key_sha256
        assert self.key_file is not None
        try:
            key = self.key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read key_file {self.key_file}: {err}") from None
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(f"key_file {self.key_file} holds {len(key)} characters; a key needs {MIN_KEY_CHARS}")
        import hashlib

        return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ProcessConfig(BaseModel):
    """The top of /etc/claw/mcp.yml: where the process listens and each enabled server's settings."""

    model_config = ConfigDict(extra="forbid")

    host: str = DEFAULT_HOST
    # The shared /metrics over HTTP; required to serve over HTTP (require_ports), unused over stdio.
    metrics_port: int | None = Field(None, gt=0, lt=65536)
    servers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Who may call over HTTP (required there: anonymous requests are refused); unused over stdio.
    clients: dict[str, ClientConfig] = Field(default_factory=dict)
    # Per server: sessions open at once for all clients together, and how long an idle session is kept.
    max_sessions: int = Field(32, gt=0, le=10000)
    session_idle_timeout_s: float = Field(600.0, gt=0, le=86400)


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


def require_clients(config: ProcessConfig, source: str) -> None:
    """Refuse to serve over HTTP without a client: every HTTP request must carry a configured client's key."""
    if not config.clients:
        raise ConfigError(
            f"clients: required to serve over HTTP (every request needs a client's key); set them in {source}"
        )


def callers(config: ProcessConfig) -> list[tuple[str, str, dict[str, frozenset[str]], int]]:
    """(name, key digest, server -> allowed tools, max sessions) of each configured client; reads key files."""
    result = []
    for name, client in config.clients.items():
        try:
            digest = client.digest()
        except ConfigError as err:
            raise ConfigError(f"clients.{name}: {err}") from None
        tools = {server: frozenset(["*"] if allowed == "*" else allowed) for server, allowed in client.servers.items()}
        result.append((name, digest, tools, client.max_sessions))
    return result


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
