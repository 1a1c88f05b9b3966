"""The appliance's own engine on crush: Ollama's native ``/api/chat`` (NDJSON) or llama.cpp's OpenAI-compatible
server. Wire formats and failures come from :mod:`claw.engine` (the same words the crush MCP server uses: model
missing with the list of models, out of memory, engine down) and raised as provider errors.

Ollama specifics: tool call arguments are JSON objects, not strings; its tool calls carry no id (one is made
up: ``call_<n>``); a tool result names its tool in ``tool_name``; ``max_output_tokens`` is
``options.num_predict``; usage is ``prompt_eval_count``/``eval_count``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from claw.engine import errors as crush_errors
from claw.engine import ollama
from claw.engine.records import ChatPart
from claw.threadweaver.providers.base import HttpProvider, ndjson
from claw.threadweaver.providers.errors import (
    ProviderBadRequest,
    ProviderDown,
    ProviderError,
    ProviderUnreachable,
)
from claw.threadweaver.providers.model import Chunk, Message, Request, Result, ToolCall, Usage, normalize_finish
from claw.threadweaver.providers.openai import OpenAIProvider

_KINDS: dict[type[crush_errors.CrushError], type[ProviderError]] = {
    crush_errors.CrushUnreachable: ProviderUnreachable,
    crush_errors.EngineDown: ProviderDown,
    crush_errors.EngineTimeout: ProviderDown,
    crush_errors.OutOfMemory: ProviderDown,
    crush_errors.ModelMissing: ProviderBadRequest,
    crush_errors.UnsupportedOperation: ProviderBadRequest,
}


def from_crush(provider: str, err: crush_errors.CrushError) -> ProviderError:
    """The crush error as the provider error of its kind, keeping crush's own message and code."""
    cls = _KINDS.get(type(err), ProviderError)
    wrapped = cls.__new__(cls)
    ProviderError.__init__(wrapped, provider, str(err))
    wrapped.crush_code = err.code  # type: ignore[attr-defined]
    return wrapped


class _CrushErrors:
    name: str
    base_url: str
    timeout: float
    engine: str = "unknown"

    def error_from_exception(self, exc: httpx.HTTPError) -> ProviderError:
        address = crush_errors.address_of(self.base_url)
        return from_crush(self.name, crush_errors.from_exception(exc, address, "chat", self.timeout))

    def error_from_response(self, status: int, body: bytes, headers: httpx.Headers, model: str | None) -> ProviderError:
        err = crush_errors.from_response(
            status, body, address=crush_errors.address_of(self.base_url), action="chat", engine=self.engine, model=model
        )
        return from_crush(self.name, err)


def ollama_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "content": message.content, "tool_name": message.name or ""}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls]
    return wire


def ollama_calls(part: ChatPart) -> list[ToolCall]:
    """The part's tool calls, each with an id (Ollama gives none: one is made up)."""
    return [ToolCall(call.id or f"call_{uuid.uuid4().hex[:12]}", call.name, call.arguments) for call in part.tool_calls]


def _usage(part: ChatPart) -> Usage:
    return Usage(part.prompt_tokens or 0, part.output_tokens or 0)


class OllamaProvider(_CrushErrors, HttpProvider):
    kind = "crush"
    engine = "ollama"
    path = "/api/chat"

    def build_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        tools = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools or ()
        ]
        extra = dict(self.extra_body)
        options = ollama.options(
            self.output_limit(request.max_output_tokens), request.temperature, **(extra.pop("options", None) or {})
        )
        messages = [ollama_message(m) for m in request.messages]
        return ollama.chat_body(request.model, messages, stream=stream, tools=tools, options=options, extra=extra)

    def _part(self, data: Any) -> ChatPart:
        failure = ollama.stream_error(data, None)
        if failure is not None:
            raise from_crush(self.name, failure)
        return ollama.chat_part(data)

    def parse_result(self, data: Any) -> Result:
        part = self._part(data)
        calls = ollama_calls(part)
        finish = "tool_calls" if calls else normalize_finish(data.get("done_reason"))
        return Result(text=part.content, tool_calls=calls, usage=_usage(part), finish_reason=finish, model=part.model)

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        calls: list[ToolCall] = []
        async for data in ndjson(response):
            part = self._part(data)
            if part.content:
                yield Chunk(text=part.content)
            calls += ollama_calls(part)
            if part.done:
                finish = "tool_calls" if calls else normalize_finish(data.get("done_reason"))
                yield Chunk(done=True, tool_calls=calls, usage=_usage(part), finish_reason=finish)
                return
        raise ProviderDown(self.name, "the stream ended before done: true")


class LlamaCppProvider(_CrushErrors, OpenAIProvider):
    """llama.cpp's OpenAI-compatible server (base_url ends in /v1)."""

    kind = "crush"
    engine = "llamacpp"
    max_tokens_field = "max_tokens"
    stream_usage_option = False


def crush_provider(name: str, base_url: str, engine: str = "ollama", **options: Any) -> HttpProvider:
    options.setdefault("trust_env", False)  # LAN traffic never goes through a proxy
    if engine == "llamacpp":
        return LlamaCppProvider(name, base_url, **options)
    if engine == "ollama":
        return OllamaProvider(name, base_url, **options)
    raise ValueError(f"unknown crush engine {engine!r}: ollama or llamacpp")


__all__ = ["LlamaCppProvider", "OllamaProvider", "crush_provider", "from_crush"]
