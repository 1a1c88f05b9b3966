"""The console's configuration file (YAML), validated; see README.md for every key."""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, field_validator, model_validator

from claw.threadweaver.console import Limits
from claw.threadweaver.governance import TokenCaps
from claw.threadweaver.guards import DEFAULT_MAX_BODY_BYTES
from claw.threadweaver.hooks import DEFAULT_TIMEOUT_S as DEFAULT_HOOK_TIMEOUT_S
from claw.threadweaver.tools import SEPARATOR, ServerConfig, ToolCatalogue


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["crush", "openai", "anthropic", "mistral", "groq"]
    base_url: str | None = None
    engine: Literal["ollama", "llamacpp"] = "ollama"
    api_key_file: Path | None = Field(None, description="File holding the API key (mode 0600)")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key")
    timeout_s: float = 120.0
    extra_body: dict[str, Any] = Field(default_factory=dict)
    max_output_tokens: int | None = Field(
        None, gt=0, description="Most tokens one reply of this provider may have, whatever a thread or client asks"
    )
    models: list[str] = Field(default_factory=list, description="Models offered in the UI's picker (any may be typed)")

    @model_validator(mode="after")
    def _crush_url(self) -> ProviderConfig:
        if self.kind == "crush" and not re.match(r"^https?://[^/\s]+", self.base_url or ""):
            raise ValueError(f"crush needs base_url, an http(s) URL (got {self.base_url!r})")
        return self

    def api_key(self) -> str | None:
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env].strip()
        if self.api_key_file is not None:
            return self.api_key_file.read_text().strip()
        return None


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Path("/var/lib/threadweaver/threads.db")
    key_file: Path | None = Path("/etc/threadweaver/store.key")
    key_env: str = "THREADWEAVER_STORE_KEY"


class StatusConfig(BaseModel):
    """Where the status panel reads the cluster from (``claw status``'s sources); any of them may be left out (the
    threadweaver role renders prometheus_url from ``appliance_services``)."""

    model_config = ConfigDict(extra="forbid")

    prometheus_url: str | None = None
    engine_url: str | None = None
    leds_socket: Path | None = None
    last_update_file: Path | None = Path("/var/lib/claw/last-update.json")
    cache_s: float = Field(10.0, ge=0)


class McpServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The server's streamable HTTP endpoint, e.g. http://127.0.0.1:8704/mcp")
    approval: Literal["annotations", "always", "never"] = Field(
        "annotations", description="annotations: read-only tools run, others ask; always: every call asks; never"
    )
    key_file: Path | None = Field(None, description="This server's client key file (else mcp.key_file)")


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    key_file: Path | None = Field(None, description="The client key sent to every MCP server (claw-mcp requires one)")
    max_tool_rounds: int = Field(4, ge=0, description="Rounds of automatic tool calls per turn before asking")
    auto_approve_non_destructive: bool = Field(False, description="Run tools declaring destructiveHint: false")
    cache_ttl_s: float = Field(30.0, ge=0, description="How long a server's tool list is reused")
    timeout_s: float = Field(30.0, gt=0, description="Longest wait for a tool call's result")
    list_timeout_s: float = Field(5.0, gt=0, description="Longest wait for a server's tool list (each turn)")

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in servers:
            # Models see "server__tool": the first "__" must split it back, and the name must be a plain word.
            if not name.isidentifier() or SEPARATOR in name:
                raise ValueError(f"MCP server name {name!r} must be an identifier without {SEPARATOR!r}")
        return servers

    def catalogue(self) -> ToolCatalogue:
        return ToolCatalogue(
            {
                name: ServerConfig(server.url, server.approval, server.key_file or self.key_file)
                for name, server in self.servers.items()
            },
            auto_approve_non_destructive=self.auto_approve_non_destructive,
            ttl_s=self.cache_ttl_s,
            timeout_s=self.timeout_s,
            list_timeout_s=self.list_timeout_s,
        )


CLIENT_NAME = re.compile(r"^[a-z0-9_-]+$")
MIN_KEY_LENGTH = 16


class GatewayClientConfig(BaseModel):
    """One client of the OpenAI-compatible gateway (an OpenClaw agent): its key, cap and providers."""

    model_config = ConfigDict(extra="forbid")

    key_file: Path = Field(description="File holding the client's bearer key (at least 16 characters)")
    cap_usd: float | None = Field(None, ge=0, description="Spend cap in USD over all providers; none: no cap")
    cap_tokens: int | None = Field(
        None,
        ge=0,
        description="Cap in tokens (input and output together) over all providers, free ones included; none: no cap",
    )
    providers: list[str] | None = Field(None, description="Providers the client may use; none: all")
    max_output_tokens: int | None = Field(
        None, gt=0, description="Most tokens one reply may have, whatever the agent asks (none asked: this many)"
    )
    max_history_turns: int | None = Field(
        None, ge=1, description="The newest whole turns sent (a user message and what follows it); none: all"
    )

    @field_validator("cap_tokens", mode="before")
    @classmethod
    def _whole_tokens(cls, value: Any) -> Any:
        """A count of tokens: a whole number, 0 or more (``1.5``, ``true``, ``"lots"`` or ``-1`` are refused)."""
        if value is None:
            return None
        whole = isinstance(value, int) and not isinstance(value, bool)
        whole = whole or (isinstance(value, float) and value.is_integer())
        whole = whole or (isinstance(value, str) and value.strip().isascii() and value.strip().isdigit())
        if not whole or int(value) < 0:
            raise ValueError(
                f"cap_tokens must be a whole number of tokens (input and output together), 0 or more, or null for "
                f"no cap; got {value!r}"
            )
        return int(value)

    def key(self) -> str:
        key = self.key_file.read_text().strip()
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"the gateway key in {self.key_file} needs at least {MIN_KEY_LENGTH} characters")
        return key


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: dict[str, GatewayClientConfig] = Field(default_factory=dict)
    limits_file: Path | None = Field(
        None,
        description="JSON overrides of the clients' cap_usd, max_output_tokens and max_history_turns (the swarm "
        "supervisor's set_worker_limits), applied at start and when the file changes; none: off",
    )

    @field_validator("clients")
    @classmethod
    def _names(cls, clients: dict[str, GatewayClientConfig]) -> dict[str, GatewayClientConfig]:
        for name in clients:
            # The name is a metric label and a config path (gateway.clients.<name>.cap_usd): keep it plain.
            if not CLIENT_NAME.match(name):
                raise ValueError(f"gateway client name {name!r} must match [a-z0-9_-]+")
        return clients

    def keys(self) -> dict[str, str]:
        """client name -> key, read from the key files; two clients with one key are refused."""
        keys = {name: client.key() for name, client in self.clients.items()}
        owners: dict[str, str] = {}
        for name, key in keys.items():
            if key in owners:
                raise ValueError(f"gateway clients {owners[key]} and {name} have the same key; give each its own")
            owners[key] = name
        return keys


class TokenCapConfig(BaseModel):
    """A provider's caps in tokens (input and output together), for providers that cost no money (crush)."""

    model_config = ConfigDict(extra="forbid")

    total: int | None = Field(None, ge=0, description="Tokens over all threads and gateway clients")
    per_thread: int | None = Field(None, ge=0, description="Tokens per thread")
    per_client: int | None = Field(None, ge=0, description="Tokens per gateway client")

    def caps(self) -> TokenCaps:
        return TokenCaps(self.total, self.per_thread, self.per_client)


class TLSConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cert_file: Path
    key_file: Path


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: IPvAnyAddress = Field(IPv4Address("127.0.0.1"), description="The address the console listens on")
    port: int = Field(ge=1, le=65535, description="The port the console listens on (required)")
    tls: TLSConfig | None = Field(None, description="Serve HTTPS with this certificate and key")
    status: StatusConfig | None = Field(None, description="The appliance status panel; none: GET /status is 404")
    store: StoreConfig = Field(default_factory=StoreConfig)
    password_file: Path = Path("/etc/threadweaver/password")
    hooks_dir: Path | None = None
    hook_timeout_s: float = Field(
        DEFAULT_HOOK_TIMEOUT_S, gt=0, le=300, description="Longest a hook may take; then its request ends (504)"
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1024, description="Largest request body accepted (413 beyond, nothing is sent)"
    )
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    prices: dict[str, dict[str, tuple[float, float]]] = Field(
        default_factory=dict, description="provider -> model (or *) -> [USD per 1M input, per 1M output]"
    )
    caps: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="provider -> spend cap in USD (0 or more); the provider needs prices"
    )
    token_caps: dict[str, TokenCapConfig] = Field(
        default_factory=dict, description="provider -> caps in tokens: total, per_thread, per_client"
    )
    limits: Limits = Field(default_factory=Limits)
    mcp: McpConfig = Field(default_factory=McpConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @model_validator(mode="after")
    def _known_providers(self) -> Settings:
        for section in ("prices", "caps", "token_caps"):
            unknown = set(getattr(self, section)) - set(self.providers)
            if unknown:
                raise ValueError(f"{section} names providers that are not configured: {', '.join(sorted(unknown))}")
        unpriced = sorted(set(self.caps) - set(self.prices))
        if unpriced:
            # A cap over spend nothing records would never be reached.
            raise ValueError(
                f"caps need prices: {', '.join(unpriced)} capped in USD with no prices.<provider> (give its models "
                'prices, "*" for any model, or use token_caps)'
            )
        for name, client in self.gateway.clients.items():
            unknown = set(client.providers or ()) - set(self.providers)
            if unknown:
                raise ValueError(
                    f"gateway.clients.{name}.providers names providers that are not configured: "
                    f"{', '.join(sorted(unknown))}"
                )
        return self


def load(path: Path) -> Settings:
    return Settings.model_validate(yaml.safe_load(path.read_text()) or {})
