"""Groq: OpenAI-compatible chat completions with a few fields it rejects.

Groq answers HTTP 400 for ``logprobs``/``top_logprobs``/``logit_bias``, for ``n`` other than 1 and for ``name`` on
messages; they are dropped from the body (``extra_body`` may carry them for other providers). Usage in a stream
comes in the last chunk's ``x_groq.usage``, so ``stream_options`` is not sent.
"""

from __future__ import annotations

from typing import Any

from claw.threadweaver.providers.model import Request, Usage
from claw.threadweaver.providers.openai import OpenAIProvider, usage_of

UNSUPPORTED = ("logprobs", "top_logprobs", "logit_bias", "stream_options", "parallel_tool_calls_strict")


class GroqProvider(OpenAIProvider):
    kind = "groq"
    stream_usage_option = False

    def build_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        body = super().build_body(request, stream=stream)
        for field in UNSUPPORTED:
            body.pop(field, None)
        if body.get("n", 1) != 1:
            body.pop("n")
        for message in body["messages"]:
            message.pop("name", None)
        return body

    def stream_usage(self, event: dict[str, Any]) -> Usage | None:
        return usage_of(event.get("usage")) or usage_of((event.get("x_groq") or {}).get("usage"))
