"""Mistral: OpenAI-like chat completions whose tool call ids must be exactly 9 letters and digits.

Ids from other providers (``call_abc…``, ``toolu_…``) are mapped to stable 9-character ids on the way out and
back again on the way in (a reply naming a mapped id gets the original); ids Mistral made are kept. Tool result
messages carry the tool ``name``. ``max_tokens``, and usage arrives in the last stream chunk unasked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import AsyncIterator
from typing import Any

from claw.threadweaver.providers.model import Chunk, Message, Request, Result, ToolCall
from claw.threadweaver.providers.openai import OpenAIProvider, wire_message

VALID_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_ALPHABET = string.ascii_letters + string.digits


def short_id(original: str) -> str:
    digest = int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        digest, index = divmod(digest, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


class IdMap:
    """Original id ↔ Mistral id for one request."""

    def __init__(self) -> None:
        self.outbound: dict[str, str] = {}
        self.inbound: dict[str, str] = {}

    def to_mistral(self, original: str | None) -> str | None:
        if original is None or VALID_ID.match(original):
            return original
        mapped = self.outbound.setdefault(original, short_id(original))
        self.inbound[mapped] = original
        return mapped

    def from_mistral(self, mistral_id: str) -> str:
        return self.inbound.get(mistral_id, mistral_id)

    def request(self, request: Request) -> Request:
        messages = [
            dataclasses.replace(
                message,
                tool_call_id=self.to_mistral(message.tool_call_id),
                tool_calls=[dataclasses.replace(c, id=self.to_mistral(c.id) or c.id) for c in message.tool_calls],
            )
            for message in request.messages
        ]
        return dataclasses.replace(request, messages=messages)

    def calls(self, calls: list[ToolCall]) -> list[ToolCall]:
        return [dataclasses.replace(call, id=self.from_mistral(call.id)) for call in calls]


class MistralProvider(OpenAIProvider):
    kind = "mistral"
    max_tokens_field = "max_tokens"
    stream_usage_option = False

    def wire_message(self, message: Message) -> dict[str, Any]:
        wire = wire_message(message)
        if message.role == "tool" and message.name:
            wire["name"] = message.name
        return wire

    async def complete(self, request: Request) -> Result:
        ids = IdMap()
        result = await super().complete(ids.request(request))
        return dataclasses.replace(result, tool_calls=ids.calls(result.tool_calls))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        ids = IdMap()
        async for chunk in super().stream(ids.request(request)):
            yield dataclasses.replace(chunk, tool_calls=ids.calls(chunk.tool_calls)) if chunk.tool_calls else chunk
