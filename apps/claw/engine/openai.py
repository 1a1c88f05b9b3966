"""The OpenAI-compatible API as data (llama.cpp's server, Ollama's ``/v1``): paths, bodies and parsed answers.

No I/O here. ``/v1/models`` lists the served models (llama-cpp-python adds ``meta.size``); chat answers are one
JSON object, or server-sent events ending in ``data: [DONE]`` whose tool calls arrive as fragments by ``index``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from claw.engine.errors import EngineError
from claw.engine.ollama import decode_arguments
from claw.engine.records import ChatPart, LoadedModel, Messages, ModelInfo, ToolCall, as_int, as_str

MODELS = "/v1/models"
CHAT = "/v1/chat/completions"
DONE = object()  # what sse_data returns for ``data: [DONE]``


def entries(payload: Any) -> list[dict[str, Any]]:
    """The entries of a ``/v1/models`` answer (entries without an id left out)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise EngineError(f"GET {MODELS}: no 'data' list in the answer")
    return [entry for entry in payload["data"] if isinstance(entry, dict) and as_str(entry.get("id"))]


def names(payload: Any) -> list[str]:
    return [entry["id"] for entry in entries(payload)]


def _size(entry: dict[str, Any]) -> int | None:
    meta = entry.get("meta")
    return as_int(meta.get("size")) if isinstance(meta, dict) else None


def model_infos(payload: Any) -> list[ModelInfo]:
    return [ModelInfo(name=entry["id"], size_bytes=_size(entry)) for entry in entries(payload)]


def loaded_models(payload: Any) -> list[LoadedModel]:
    """llama.cpp keeps every served model loaded: the served ones (no memory split, no context size)."""
    return [LoadedModel(name=entry["id"], size_bytes=_size(entry)) for entry in entries(payload)]


def owners(payload: Any) -> str | None:
    """The servers' ``owned_by`` values, the nearest thing to a version this API has."""
    owned = {str(entry.get("owned_by")) for entry in entries(payload) if entry.get("owned_by")}
    return ",".join(sorted(owned)) or None


def chat_body(
    model: str,
    messages: Messages,
    *,
    stream: bool,
    tools: Iterable[dict[str, Any]] | None = None,
    max_tokens: int | None = None,
    include_usage: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": list(messages), **(extra or {}), "stream": stream}
    if max_tokens:
        body["max_tokens"] = max_tokens
    tools = list(tools or ())
    if tools:
        body["tools"] = tools
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def sse_data(line: str) -> str | object | None:
    """The data of one SSE line: None for comments, keep-alives and other fields, :data:`DONE` at the end."""
    if not line.startswith("data:"):
        return None
    data = line[len("data:") :].strip()
    return DONE if data == "[DONE]" else data


def _usage(obj: dict[str, Any], part: ChatPart) -> None:
    usage = obj.get("usage")
    if isinstance(usage, dict) and usage:
        part.prompt_tokens = as_int(usage.get("prompt_tokens"))
        part.output_tokens = as_int(usage.get("completion_tokens"))


def completion_part(obj: Any) -> ChatPart:
    """A whole ``chat.completion`` answer."""
    try:
        choice = obj["choices"][0]
        message = choice["message"] or {}
        calls = [
            ToolCall(str((c.get("function") or {}).get("name") or ""),
                     decode_arguments((c.get("function") or {}).get("arguments")), c.get("id") or "")
            for c in message.get("tool_calls") or []
        ]  # fmt: skip
        part = ChatPart(
            content=str(message.get("content") or ""),
            tool_calls=calls,
            done=True,
            done_reason=as_str(choice.get("finish_reason")),
            model=as_str(obj.get("model")),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise EngineError(f"POST {CHAT}: no choices in the answer") from None
    _usage(obj, part)
    return part


def chunk_part(obj: Any) -> ChatPart:
    """One ``chat.completion.chunk`` event: its content delta, tool call fragments, finish reason and usage."""
    if not isinstance(obj, dict):
        raise EngineError(f"POST {CHAT}: a streamed event is not a JSON object")
    part = ChatPart(model=as_str(obj.get("model")))
    for choice in obj.get("choices") or []:
        delta = choice.get("delta") or {}
        part.content += str(delta.get("content") or "")
        part.tool_call_deltas += delta.get("tool_calls") or []
        reason = as_str(choice.get("finish_reason"))
        if reason:
            part.done, part.done_reason = True, reason
    _usage(obj, part)
    return part


class ToolCallAssembler:
    """Joins the tool call fragments of a stream (``index``, then ``id``/``name``/argument pieces) into calls."""

    def __init__(self) -> None:
        self._slots: dict[int, dict[str, str]] = {}

    def add(self, fragments: Iterable[dict[str, Any]]) -> None:
        for call in fragments:
            slot = self._slots.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
            function = call.get("function") or {}
            slot["id"] = call.get("id") or slot["id"]
            slot["name"] += function.get("name") or ""
            slot["arguments"] += function.get("arguments") or ""

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(slot["name"], decode_arguments(slot["arguments"]), slot["id"])
            for _, slot in sorted(self._slots.items())
        ]
