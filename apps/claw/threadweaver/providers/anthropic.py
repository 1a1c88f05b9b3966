"""Anthropic's Messages API (``POST /v1/messages``), JSON and SSE.

Translation: system messages become the top-level ``system`` field; ``max_tokens`` is required (the thread's
``max_output_tokens``, else :data:`DEFAULT_MAX_TOKENS`); assistant tool calls are ``tool_use`` blocks and tool
results are ``tool_result`` blocks in a ``user`` message (consecutive results in one message); consecutive messages
of one role are merged, since roles must alternate. Streams are typed SSE events: ``message_start``,
``content_block_start``/``_delta``/``_stop``, ``message_delta`` (stop reason, output tokens), ``message_stop``,
``ping`` and ``error``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from claw.engine.ollama import decode_arguments
from claw.threadweaver.providers.base import HttpProvider, sse_events
from claw.threadweaver.providers.errors import ProviderDown, ProviderError, provider_message
from claw.threadweaver.providers.model import Chunk, Message, Request, Result, ToolCall, Usage, normalize_finish

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def tool_id(original: str | None) -> str:
    """Anthropic ids match ``^[a-zA-Z0-9_-]+$``."""
    return _INVALID_ID_CHARS.sub("_", original or "") or "call"


def blocks_of(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        block = {"type": "tool_result", "tool_use_id": tool_id(message.tool_call_id), "content": message.content}
        return "user", [block]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls if message.role == "assistant" else []:
        blocks.append({"type": "tool_use", "id": tool_id(call.id), "name": call.name, "input": call.arguments})
    return message.role, blocks


def wire_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = blocks_of(message)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            # Tool results go first in a user message; a user's text after them follows them.
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    return system, wire


class AnthropicProvider(HttpProvider):
    kind = "anthropic"
    path = "/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def build_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        system, messages = wire_messages(request.messages)
        body: dict[str, Any] = {
            **self.extra_body,
            "model": request.model,
            "max_tokens": self.output_limit(request.max_output_tokens) or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        return body

    def parse_result(self, data: Any) -> Result:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ProviderDown(self.name, "its answer has no content blocks")
        text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
        calls = [
            ToolCall(b["id"], b["name"], decode_arguments(b.get("input")))
            for b in data["content"]
            if b.get("type") == "tool_use"
        ]
        usage = data.get("usage") or {}
        return Result(
            text=text,
            tool_calls=calls,
            usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
            finish_reason=normalize_finish(data.get("stop_reason")),
            model=data.get("model"),
        )

    async def parse_stream(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        usage = Usage()
        finish: str | None = None
        tools: dict[int, dict[str, Any]] = {}
        async for event, data in sse_events(response):
            payload = json.loads(data)
            kind = event or payload.get("type")
            if kind == "error":
                raise ProviderError(self.name, f"{self.name} failed mid-stream: {provider_message(payload)}")
            if kind == "message_start":
                start_usage = (payload.get("message") or {}).get("usage") or {}
                usage.input_tokens = int(start_usage.get("input_tokens") or 0)
                usage.output_tokens = int(start_usage.get("output_tokens") or 0)
            elif kind == "content_block_start":
                block = payload.get("content_block") or {}
                if block.get("type") == "tool_use":
                    tools[payload["index"]] = {"id": block["id"], "name": block["name"], "json": ""}
                elif block.get("text"):
                    yield Chunk(text=block["text"])
            elif kind == "content_block_delta":
                delta = payload.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield Chunk(text=delta["text"])
                elif delta.get("type") == "input_json_delta":
                    tools[payload["index"]]["json"] += delta.get("partial_json", "")
            elif kind == "message_delta":
                finish = (payload.get("delta") or {}).get("stop_reason") or finish
                output = (payload.get("usage") or {}).get("output_tokens")
                if output is not None:
                    usage.output_tokens = int(output)
            elif kind == "message_stop":
                break
        calls = [ToolCall(t["id"], t["name"], decode_arguments(t["json"])) for _, t in sorted(tools.items())]
        yield Chunk(done=True, tool_calls=calls, usage=usage, finish_reason=normalize_finish(finish))
