"""The console's configuration file (YAML), validated; see README.md for every key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from claw.threadweaver.console import Limits


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["crush", "openai", "anthropic", "mistral", "groq"]
    base_url: str | None = None
    engine: Literal["ollama", "llamacpp"] = "ollama"
    api_key_file: Path | None = Field(None, description="File holding the API key (mode 0600)")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key")
    timeout_s: float = 120.0
    extra_body: dict[str, Any] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list, description="Models offered in the UI's picker (any may be typed)")

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
    """Where the status panel reads the cluster from (``claw status``'s sources); any of them may be left out."""

    model_config = ConfigDict(extra="forbid")

    prometheus_url: str | None = "http://127.0.0.1:9090"
    engine_url: str | None = None
    leds_socket: Path | None = None
    last_update_file: Path | None = Path("/var/lib/claw/last-update.json")
    cache_s: float = Field(10.0, ge=0)


class TLSConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cert_file: Path
    key_file: Path


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8600, ge=1, le=65535)
    tls: TLSConfig | None = Field(None, description="Serve HTTPS with this certificate and key")
    status: StatusConfig | None = Field(None, description="The appliance status panel; none: GET /status is 404")
    store: StoreConfig = Field(default_factory=StoreConfig)
    password_file: Path = Path("/etc/threadweaver/password")
    hooks_dir: Path | None = None
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    prices: dict[str, dict[str, tuple[float, float]]] = Field(
        default_factory=dict, description="provider -> model (or *) -> [USD per 1M input, per 1M output]"
    )
    caps: dict[str, float] = Field(default_factory=dict, description="provider -> spend cap in USD")
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _known_providers(self) -> Settings:
        for section in ("prices", "caps"):
            unknown = set(getattr(self, section)) - set(self.providers)
            if unknown:
                raise ValueError(f"{section} names providers that are not configured: {', '.join(sorted(unknown))}")
        return self


def load(path: Path) -> Settings:
    return Settings.model_validate(yaml.safe_load(path.read_text()) or {})
