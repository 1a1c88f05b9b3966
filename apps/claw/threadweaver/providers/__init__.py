"""Provider adapters behind one message model (:mod:`.model`) and one error vocabulary (:mod:`.errors`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from claw.threadweaver.providers.anthropic import AnthropicProvider
from claw.threadweaver.providers.crush import crush_provider
from claw.threadweaver.providers.groq import GroqProvider
from claw.threadweaver.providers.mistral import MistralProvider
from claw.threadweaver.providers.model import Chunk, Request, Result
from claw.threadweaver.providers.openai import OpenAIProvider

KINDS = ("crush", "openai", "anthropic", "mistral", "groq")
DEFAULT_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "mistral": "https://api.mistral.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
}


class Provider(Protocol):
    name: str
    kind: str

    async def complete(self, request: Request) -> Result: ...

    def stream(self, request: Request) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None: ...


def build(name: str, kind: str, base_url: str | None = None, **options: Any) -> Provider:
    """An adapter for a configured provider; ``options``: api_key, timeout, transport, engine (crush), extra_body."""
    if kind == "crush":
        if not base_url:
            raise ValueError(f"provider {name}: crush needs base_url (e.g. http://crush:11434)")
        return crush_provider(name, base_url, **options)
    classes = {
        "openai": OpenAIProvider,
        "anthropic": AnthropicProvider,
        "mistral": MistralProvider,
        "groq": GroqProvider,
    }
    if kind not in classes:
        raise ValueError(f"provider {name}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    options.pop("engine", None)
    return classes[kind](name, base_url or DEFAULT_URLS[kind], **options)
