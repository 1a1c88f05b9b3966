"""OpenAI chat completions (``POST /chat/completions``), JSON and SSE; the base of the OpenAI-like adapters.

The module-level helpers are OpenAI's wire format in both directions (message model → wire, wire → message
model); the adapters use them to talk to OpenAI-like services and the gateway (:mod:`..gateway`) uses the same
ones to serve OpenAI's API, so the format is written down once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx

from claw.engine.ollama import decode_arguments
from claw.threadweaver.providers.base import HttpProvider, sse_events
from claw.threadweaver.providers.errors import ProviderDown, ProviderError, provider_message
from claw.threadweaver.providers.model import (
    Chunk,
    Message,
    Request,
    Result,
    ToolCall,
    ToolSpec,
    Usage,
    normalize_finish,
)


def wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return wire


def function_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def usage_of(data: dict[str, Any] | None) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0))


def wire_usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def calls_of(wire: list[dict[str, Any]] | None) -> list[ToolCall]:
    """``tool_calls`` of a wire message as tool calls (arguments: a JSON string on the wire, a dict here)."""
    return [
        ToolCall(
            call.get("id") or f"call_{n}",
            call["function"]["name"],
            decode_arguments(call["function"].get("arguments")),
        )
        for n, call in enumerate(wire or [])
    ]


def text_of(content: str | list[dict[str, Any]] | None) -> str:
    """A wire message's content: a string, or text parts (joined with newlines); other parts are not text."""
    if isinstance(content, list):
        return "\n".join(part.get("text") or "" for part in content if part.get("type") == "text")
    return content or ""


def message_of(wire: dict[str, Any]) -> Message:
    """A wire message (``system``, ``developer``, ``user``, ``assistant``, ``tool``) in the message model.

    ``developer`` is OpenAI's newer name for system instructions (sent for reasoning models): a system message.
    """
    role = "system" if wire["role"] == "developer" else wire["role"]
    content = text_of(wire.get("content"))
    if role == "tool":
        return Message("tool", content, tool_call_id=wire.get("tool_call_id"), name=wire.get("name"))
    calls = calls_of(wire.get("tool_calls")) if role == "assistant" else []
    return Message(role, content, tool_calls=calls)


def tool_specs_of(wire: list[dict[str, Any]] | None) -> list[ToolSpec]:
    """``tools`` of a request (function tools) as tool specs; the inverse of :func:`function_tools`."""
    specs = []
    for tool in wire or []:
        function = tool["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(function["name"], function.get("description") or "", parameters))
    return specs


class OpenAIProvider(HttpProvider):
    kind = "openai"
    path = "/chat/completions"
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    stream_usage_option: ClassVar[bool] = True  # ask for usage in the last SSE chunk

    def wire_message(self, message: Message) -> dict[str, Any]:
        return wire_message(message)

    def build_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": request.model,
            "messages": [self.wire_message(message) for message in request.messages],
        }
        if request.tools:
            body["tools"] = function_tools(request.tools)
        if limit := self.output_limit(request.max_output_tokens):
            body[self.max_tokens_field] = limit
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
            if self.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        return body

    def parse_result(self, data: Any) -> Result:
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise ProviderDown(self.name, "its answer has no choices[0].message") from None
        return Result(
            text=message.get("content") or "",
            tool_calls=calls_of(message.get("tool_calls")),
            usage=usage_of(data.get("usage")) or Usage(),
            finish_reason=normalize_finish(choice.get("finish_reason")),
            model=data.get("model"),
        )

    def stream_usage(self, event: dict[str, Any]) -> Usage | None:
        return usage_of(event.get("usage"))

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        parts: dict[int, dict[str, Any]] = {}
        usage: Usage | None = None
        finish: str | None = None
        async for _, data in sse_events(response):
            if data.strip() == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                raise ProviderError(self.name, f"{self.name} failed mid-stream: {provider_message(event)}")
            usage = self.stream_usage(event) or usage
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield Chunk(text=delta["content"])
                for position, call in enumerate(delta.get("tool_calls") or []):
                    part = parts.setdefault(call.get("index", position), {"id": None, "name": "", "arguments": ""})
                    part["id"] = call.get("id") or part["id"]
                    function = call.get("function") or {}
                    part["name"] += function.get("name") or ""
                    arguments = function.get("arguments")
                    if isinstance(arguments, dict):
                        arguments = json.dumps(arguments)
                    part["arguments"] += arguments or ""
                finish = choice.get("finish_reason") or finish
        calls = [
            ToolCall(part["id"] or f"call_{index}", part["name"], decode_arguments(part["arguments"]))
            for index, part in sorted(parts.items())
        ]
        yield Chunk(done=True, tool_calls=calls, usage=usage or Usage(), finish_reason=normalize_finish(finish))
