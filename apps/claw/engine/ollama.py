"""Ollama's native API as data: the paths, the request bodies and the answers parsed into :mod:`claw.engine.records`.

No I/O here; :mod:`claw.engine.client` (async) and :mod:`claw.engine.sync` send the requests. Shapes from Ollama
0.12 and its docs/api.md: tool call arguments are JSON objects, tool calls carry no id, usage is
``prompt_eval_count``/``eval_count``, durations are nanoseconds, and a failure inside a 200 stream is an
``{"error": "..."}`` line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from claw.engine import errors
from claw.engine.errors import CrushError, EngineError
from claw.engine.records import ChatPart, LoadedModel, Messages, ModelInfo, ToolCall, as_int, as_str

VERSION = "/api/version"
TAGS = "/api/tags"
PS = "/api/ps"
PULL = "/api/pull"
GENERATE = "/api/generate"
CHAT = "/api/chat"


def with_tag(name: str) -> str:
    """Ollama lists "qwen3" as "qwen3:latest"."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def version(payload: Any) -> str | None:
    return as_str(payload.get("version")) if isinstance(payload, dict) else None


def entries(payload: Any, path: str) -> list[dict[str, Any]]:
    """The model entries of a ``/api/tags`` or ``/api/ps`` answer (entries without a name left out)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("models"), list):
        raise EngineError(f"GET {path}: no 'models' list in the answer")
    return [e for e in payload["models"] if isinstance(e, dict) and as_str(e.get("name") or e.get("model"))]


def _details(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["details"] if isinstance(entry.get("details"), dict) else {}


def model_infos(payload: Any) -> list[ModelInfo]:
    """The models of an ``/api/tags`` answer (downloaded)."""
    return [
        ModelInfo(
            name=entry.get("name") or entry["model"],
            size_bytes=as_int(entry.get("size")),
            family=as_str(_details(entry).get("family")),
            parameter_size=as_str(_details(entry).get("parameter_size")),
            quantization=as_str(_details(entry).get("quantization_level")),
            modified_at=as_str(entry.get("modified_at")),
            digest=as_str(entry.get("digest")),
        )
        for entry in entries(payload, TAGS)
    ]


def loaded_models(payload: Any) -> list[LoadedModel]:
    """The models of an ``/api/ps`` answer (in memory); ``context_length`` only on newer releases."""
    return [
        LoadedModel(
            name=entry.get("name") or entry["model"],
            size_bytes=as_int(entry.get("size")),
            size_vram_bytes=as_int(entry.get("size_vram")),
            context_length=as_int(entry.get("context_length")) or None,
            expires_at=as_str(entry.get("expires_at")),
            parameter_size=as_str(_details(entry).get("parameter_size")),
            quantization=as_str(_details(entry).get("quantization_level")),
        )
        for entry in entries(payload, PS)
    ]


def unload_body(model: str) -> dict[str, Any]:
    return {"model": model, "keep_alive": 0, "stream": False}


def preload_body(model: str, keep_alive: str | int) -> dict[str, Any]:
    return {"model": model, "prompt": "hi", "stream": False, "keep_alive": keep_alive}


def options(
    max_tokens: int | None = None, temperature: float | None = None, num_ctx: int | None = None, **more: Any
) -> dict[str, Any]:
    """The ``options`` object: ``num_predict`` is the reply's token limit."""
    opts = dict(more)
    if temperature is not None:
        opts["temperature"] = temperature
    if max_tokens:
        opts["num_predict"] = max_tokens
    if num_ctx:
        opts["num_ctx"] = num_ctx
    return opts


def chat_body(
    model: str,
    messages: Messages,
    *,
    stream: bool,
    tools: Iterable[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    keep_alive: str | int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {**(extra or {}), "model": model, "messages": list(messages), "stream": stream}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    if options:
        body["options"] = options
    tools = list(tools or ())
    if tools:
        body["tools"] = tools
    return body


def decode_arguments(raw: Any) -> dict[str, Any]:
    """Tool arguments as a dict, whether the wire carried an object (Ollama) or a JSON string (OpenAI)."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {"_raw": str(raw)}
    return parsed if isinstance(parsed, dict) else {"_raw": str(raw)}


def tool_calls(message: dict[str, Any]) -> list[ToolCall]:
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append(
            ToolCall(str(function.get("name") or ""), decode_arguments(function.get("arguments")), call.get("id") or "")
        )
    return calls


def _seconds(value: Any) -> float | None:
    return value / 1e9 if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def chat_part(obj: Any) -> ChatPart:
    """One ``/api/chat`` answer, or one line of its NDJSON stream; the last carries ``done`` and the counts."""
    if not isinstance(obj, dict):
        raise EngineError(f"POST {CHAT}: the answer is not a JSON object")
    message = obj.get("message") or {}
    done = bool(obj.get("done"))
    return ChatPart(
        content=str(message.get("content") or ""),
        tool_calls=tool_calls(message),
        done=done,
        done_reason=as_str(obj.get("done_reason")) or ("stop" if done else None),
        model=as_str(obj.get("model")),
        prompt_tokens=as_int(obj.get("prompt_eval_count")),
        output_tokens=as_int(obj.get("eval_count")),
        load_s=_seconds(obj.get("load_duration")),
        prompt_eval_s=_seconds(obj.get("prompt_eval_duration")),
        eval_s=_seconds(obj.get("eval_duration")),
    )


def stream_error(obj: Any, model: str | None, engine: str = "ollama") -> CrushError | None:
    """An ``{"error": ...}`` object inside a 200 answer or stream (how Ollama reports a failed pull or load)."""
    message = errors.engine_message(obj) if isinstance(obj, dict) and "error" in obj else None
    if message is None:
        return None
    return errors.from_message(message, model=model, engine=engine) or EngineError(message)
