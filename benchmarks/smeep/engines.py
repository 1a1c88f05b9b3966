"""Chat clients for the two wire formats SMEEP speaks: Ollama's native API and the OpenAI-compatible one.

Both return the same :class:`Reply` (text, tool calls with decoded arguments, token counts and engine timings),
so the drivers and the throughput mode do not care which engine answered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


class EngineError(RuntimeError):
    """The engine answered with an error or something that is not its wire format."""


class LoadError(EngineError):
    """The model could not be loaded (preload failed, unknown model)."""


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    ttft_s: float | None = None
    total_s: float = 0.0
    # Ollama's own timings (seconds) when it reports them.
    load_s: float | None = None
    prompt_eval_s: float | None = None
    eval_s: float | None = None
    chunks: int = 0


def _arguments(raw: Any) -> dict[str, Any]:
    """Ollama sends an object, OpenAI a JSON string; anything unparsable is kept under '_raw'."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return {"_raw": raw}
        return value if isinstance(value, dict) else {"_raw": raw}
    return {}


class Engine:
    """Base: the engine's root URL and one HTTP client; subclasses speak one wire format."""

    kind = "engine"

    def __init__(self, url: str, *, timeout: float = 300.0) -> None:
        self.root = url.rstrip("/").removesuffix("/v1").removesuffix("/api")
        self.http = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        stream: bool = False,
        max_tokens: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Reply:
        raise NotImplementedError

    async def version(self) -> str | None:
        return None

    async def digest(self, model: str) -> str | None:
        return None

    async def evict_all(self) -> list[str]:
        """Unload every loaded model where the engine can; returns what was evicted."""
        return []

    async def preload(self, model: str, keep_alive: str) -> float | None:
        """Load the model before the timed runs; returns the load time in seconds where known."""
        return None

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        raise NotImplementedError

    def assistant_message(self, reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        response = await self.http.post(self.root + path, json=body)
        if response.status_code >= 400:
            raise EngineError(f"{path} answered {response.status_code}: {response.text[:300]}")
        return response


class OllamaEngine(Engine):
    """Ollama's native /api/chat: NDJSON when streaming, tool calls with object arguments."""

    kind = "ollama"

    def __init__(self, url: str, *, timeout: float = 300.0, keep_alive: str = "5m", num_ctx: int | None = None) -> None:
        super().__init__(url, timeout=timeout)
        self.keep_alive = keep_alive
        self.num_ctx = num_ctx

    async def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        stream: bool = False,
        max_tokens: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Reply:
        opts: dict[str, Any] = {"temperature": 0, **(options or {})}
        if max_tokens:
            opts["num_predict"] = max_tokens
        if self.num_ctx:
            opts["num_ctx"] = self.num_ctx
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": stream,
            "keep_alive": self.keep_alive,
            "options": opts,
        }
        if tools:
            body["tools"] = tools
        reply = Reply()
        start = time.perf_counter()
        async with self.http.stream("POST", self.root + "/api/chat", json=body) as response:
            if response.status_code >= 400:
                text = (await response.aread()).decode(errors="replace")
                error = EngineError if response.status_code != 404 else LoadError
                raise error(f"/api/chat answered {response.status_code}: {text[:300]}")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                try:
                    chunk = json.loads(line)
                except json.JSONDecodeError as err:
                    raise EngineError(f"not NDJSON: {line[:200]}") from err
                if "error" in chunk:
                    raise EngineError(str(chunk["error"]))
                message = chunk.get("message") or {}
                if message.get("content"):
                    reply.ttft_s = reply.ttft_s or time.perf_counter() - start
                    reply.content += message["content"]
                    reply.chunks += 1
                for call in message.get("tool_calls") or []:
                    function = call.get("function") or {}
                    reply.ttft_s = reply.ttft_s or time.perf_counter() - start
                    reply.tool_calls.append(ToolCall(function.get("name", ""), _arguments(function.get("arguments"))))
                if chunk.get("done"):
                    reply.prompt_tokens = chunk.get("prompt_eval_count")
                    reply.output_tokens = chunk.get("eval_count")
                    reply.load_s = _ns(chunk.get("load_duration"))
                    reply.prompt_eval_s = _ns(chunk.get("prompt_eval_duration"))
                    reply.eval_s = _ns(chunk.get("eval_duration"))
        reply.total_s = time.perf_counter() - start
        return reply

    def assistant_message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in reply.tool_calls]
        return message

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_name": call.name, "content": content}

    async def version(self) -> str | None:
        try:
            return (await self.http.get(self.root + "/api/version")).json().get("version")
        except (httpx.HTTPError, ValueError):
            return None

    async def digest(self, model: str) -> str | None:
        try:
            for entry in (await self.http.get(self.root + "/api/tags")).json().get("models", []):
                if model in (entry.get("name"), entry.get("model")):
                    return entry.get("digest")
        except (httpx.HTTPError, ValueError):
            return None
        return None

    async def evict_all(self) -> list[str]:
        loaded = (await self.http.get(self.root + "/api/ps")).json().get("models", [])
        names = [entry.get("name") or entry.get("model") for entry in loaded]
        for name in names:
            await self._post("/api/generate", {"model": name, "keep_alive": 0})
        return names

    async def preload(self, model: str, keep_alive: str) -> float | None:
        try:
            response = await self._post(
                "/api/generate", {"model": model, "prompt": "hi", "stream": False, "keep_alive": keep_alive}
            )
        except (EngineError, httpx.HTTPError) as err:
            raise LoadError(f"preload of {model} failed: {err}") from None
        return _ns(response.json().get("load_duration"))


class OpenAIEngine(Engine):
    """The OpenAI-compatible /v1/chat/completions (llama.cpp's server, Ollama's /v1): SSE when streaming."""

    kind = "openai"

    async def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        stream: bool = False,
        max_tokens: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Reply:
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": 0, "stream": stream}
        body.update(options or {})
        if max_tokens:
            body["max_tokens"] = max_tokens
        if tools:
            body["tools"] = tools
        if stream:
            body["stream_options"] = {"include_usage": True}
        reply = Reply()
        start = time.perf_counter()
        async with self.http.stream("POST", self.root + "/v1/chat/completions", json=body) as response:
            if response.status_code >= 400:
                text = (await response.aread()).decode(errors="replace")
                error = LoadError if response.status_code == 404 else EngineError
                raise error(f"/v1/chat/completions answered {response.status_code}: {text[:300]}")
            if stream:
                await self._read_sse(response, reply, start)
            else:
                self._read_json(json.loads(await response.aread()), reply)
        reply.total_s = time.perf_counter() - start
        return reply

    async def _read_sse(self, response: httpx.Response, reply: Reply, start: float) -> None:
        partial: dict[int, dict[str, str]] = {}
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise EngineError(str(chunk["error"]))
            self._usage(chunk, reply)
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    reply.ttft_s = reply.ttft_s or time.perf_counter() - start
                    reply.content += delta["content"]
                    reply.chunks += 1
                for call in delta.get("tool_calls") or []:
                    reply.ttft_s = reply.ttft_s or time.perf_counter() - start
                    slot = partial.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                    function = call.get("function") or {}
                    slot["id"] = call.get("id") or slot["id"]
                    slot["name"] += function.get("name") or ""
                    slot["arguments"] += function.get("arguments") or ""
        for index in sorted(partial):
            slot = partial[index]
            reply.tool_calls.append(ToolCall(slot["name"], _arguments(slot["arguments"]), slot["id"]))

    def _read_json(self, answer: dict[str, Any], reply: Reply) -> None:
        if "error" in answer:
            raise EngineError(str(answer["error"]))
        message = (answer.get("choices") or [{}])[0].get("message") or {}
        reply.content = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            reply.tool_calls.append(
                ToolCall(function.get("name", ""), _arguments(function.get("arguments")), call.get("id", ""))
            )
        self._usage(answer, reply)

    @staticmethod
    def _usage(chunk: dict[str, Any], reply: Reply) -> None:
        usage = chunk.get("usage") or {}
        if usage:
            reply.prompt_tokens = usage.get("prompt_tokens", reply.prompt_tokens)
            reply.output_tokens = usage.get("completion_tokens", reply.output_tokens)

    def assistant_message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return message

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call.id or "call_0", "content": content}

    async def version(self) -> str | None:
        try:
            response = await self.http.get(self.root + "/v1/models")
            owned = {entry.get("owned_by") for entry in response.json().get("data", [])}
            return ",".join(sorted(str(o) for o in owned if o)) or None
        except (httpx.HTTPError, ValueError):
            return None


def _ns(value: Any) -> float | None:
    return value / 1e9 if isinstance(value, (int, float)) else None


def make_engine(url: str, api: str, *, timeout: float, keep_alive: str = "5m", num_ctx: int | None = None) -> Engine:
    """'ollama' or 'openai'; 'auto' picks Ollama unless the URL ends in /v1."""
    if api == "auto":
        api = "openai" if url.rstrip("/").endswith("/v1") else "ollama"
    if api == "ollama":
        return OllamaEngine(url, timeout=timeout, keep_alive=keep_alive, num_ctx=num_ctx)
    if api == "openai":
        return OpenAIEngine(url, timeout=timeout)
    raise ValueError(f"unknown API {api!r}: ollama, openai or auto")
