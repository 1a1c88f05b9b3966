"""Chat clients for the two wire formats SMEEP speaks: Ollama's native API and the OpenAI-compatible one.

Both return the same :class:`Reply` (text, tool calls with decoded arguments, token counts and engine timings),
so the drivers and the throughput mode do not care which engine answered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from claw.engine import ollama, openai
from claw.engine.client import EngineClient
from claw.engine.errors import CrushError, EngineDown, ModelUnavailable
from claw.engine.records import ChatPart, ToolCall
from claw.engine.records import Engine as EngineKind

Obj = dict[str, Any]
Json = list[Obj]  # chat messages and tool schemas

__all__ = ["BearerTransport", "Engine", "OllamaEngine", "OpenAIEngine", "Reply", "ToolCall", "make_engine"]


class BearerTransport(httpx.AsyncBaseTransport):
    """Sends ``Authorization: Bearer <key>`` with every request: the shared engine client takes a transport,
    not headers, and the key must never reach the results."""

    def __init__(self, key: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._key = key
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


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

    def add(self, part: ChatPart, started: float) -> None:
        """Take in one parsed answer or streamed piece: text, whole tool calls, counts and timings."""
        if part.content or part.tool_calls or part.tool_call_deltas:
            self.ttft_s = self.ttft_s or time.perf_counter() - started
        if part.content:
            self.content += part.content
            self.chunks += 1
        self.tool_calls += part.tool_calls
        for name in ("prompt_tokens", "output_tokens", "load_s", "prompt_eval_s", "eval_s"):
            value = getattr(part, name)
            if value is not None:
                setattr(self, name, value)


class Engine:
    """Base: the engine's base URL, used as given, and one HTTP client; subclasses speak one wire format."""

    kind = "engine"
    dialect: EngineKind = "ollama"
    chat_path = ""  # what :meth:`chat` posts to, relative to the base URL

    def __init__(self, url: str, *, timeout: float = 300.0, api_key: str | None = None) -> None:
        self.root = self.base_url(url)
        transport = BearerTransport(api_key) if api_key else None
        self.client = EngineClient(self.root, self.dialect, timeout, transport=transport)

    @staticmethod
    def base_url(url: str) -> str:
        """Where this wire format's paths start; a proxy's path prefix (``.../ollama``) is kept."""
        return url.rstrip("/")

    async def aclose(self) -> None:
        await self.client.aclose()

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
        """One chat request at temperature 0 (unless ``options`` says otherwise), timed from the request on."""
        extra = {"temperature": 0, **(options or {})}
        body = self.chat_body(model, messages, tools, stream, max_tokens, extra)
        reply = Reply()
        start = time.perf_counter()
        async with self.client.request("POST", self.chat_path, body=body, model=model) as response:
            await self.read_reply(response, reply, start, model=model, stream=stream)
        reply.total_s = time.perf_counter() - start
        return reply

    def chat_body(
        self, model: str, messages: Json, tools: Json | None, stream: bool, limit: int | None, options: Obj
    ) -> Obj:
        """The request body of :attr:`chat_path` in this engine's wire format (``limit``: max_tokens)."""
        raise NotImplementedError

    async def read_reply(self, response: httpx.Response, reply: Reply, start: float, model: str, stream: bool) -> None:
        """Add the answer's parts to ``reply`` (``start`` for the time to the first token)."""
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

    def _parsed(self, line: str, model: str) -> Any:
        try:
            obj = json.loads(line)
        except ValueError:
            raise EngineDown(
                self.client.address, f"the chat stream carried something other than JSON: {line[:200]}"
            ) from None
        failure = ollama.stream_error(obj, model, self.dialect)
        if failure is not None:
            raise failure
        return obj


class OllamaEngine(Engine):
    """Ollama's native /api/chat: NDJSON when streaming, tool calls with object arguments."""

    kind = "ollama"
    chat_path = ollama.CHAT

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 300.0,
        keep_alive: str = "5m",
        num_ctx: int | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout, api_key=api_key)
        self.keep_alive = keep_alive
        self.num_ctx = num_ctx

    def chat_body(
        self, model: str, messages: Json, tools: Json | None, stream: bool, limit: int | None, options: Obj
    ) -> Obj:
        opts = ollama.options(limit, num_ctx=self.num_ctx, **options)
        return ollama.chat_body(model, messages, stream=stream, tools=tools, options=opts, keep_alive=self.keep_alive)

    async def read_reply(self, response: httpx.Response, reply: Reply, start: float, model: str, stream: bool) -> None:
        async for line in self.client.lines(response, f"POST {ollama.CHAT}"):
            reply.add(ollama.chat_part(self._parsed(line, model)), start)

    def assistant_message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in reply.tool_calls]
        return message

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_name": call.name, "content": content}

    async def version(self) -> str | None:
        try:
            return ollama.version(await self.client.request_json("GET", ollama.VERSION))
        except CrushError:
            return None

    async def digest(self, model: str) -> str | None:
        try:
            models = await self.client.list_models()
        except CrushError:
            return None
        return next((entry.digest for entry in models if entry.name == model), None)

    async def evict_all(self) -> list[str]:
        names = [entry.name for entry in await self.client.loaded_models()]
        for name in names:
            await self.client.request_json("POST", ollama.GENERATE, body=ollama.unload_body(name), model=name)
        return names

    async def preload(self, model: str, keep_alive: str) -> float | None:
        body = ollama.preload_body(model, keep_alive)
        try:
            answer = await self.client.request_json("POST", ollama.GENERATE, body=body, model=model)
        except ModelUnavailable:
            raise
        except CrushError as err:
            raise ModelUnavailable(model, f"preload failed: {err}") from None
        return ollama.chat_part(answer).load_s


class OpenAIEngine(Engine):
    """The OpenAI-compatible chat/completions (llama.cpp's server, Ollama's /v1, any hosted endpoint): SSE when
    streaming. The base URL is the one such APIs document (``http://host/v1``, ``https://host/api/v1``), used as
    is; a bare ``http://host:port`` gets ``/v1``, where llama.cpp and Ollama serve it."""

    kind = "openai"
    dialect = "llamacpp"
    chat_path = "chat/completions"
    models_path = "models"

    @staticmethod
    def base_url(url: str) -> str:
        url = url.rstrip("/")
        return url if urlsplit(url).path else url + "/v1"

    def chat_body(
        self, model: str, messages: Json, tools: Json | None, stream: bool, limit: int | None, options: Obj
    ) -> Obj:
        return openai.chat_body(
            model, messages, stream=stream, tools=tools, max_tokens=limit, include_usage=True, extra=options
        )

    async def read_reply(self, response: httpx.Response, reply: Reply, start: float, model: str, stream: bool) -> None:
        if not stream:
            reply.add(openai.completion_part(self._parsed((await response.aread()).decode(), model)), start)
            return
        calls = openai.ToolCallAssembler()
        async for line in self.client.lines(response, f"POST {self.chat_path}"):
            data = openai.sse_data(line)
            if data is openai.DONE:
                break
            if data is not None:
                part = openai.chunk_part(self._parsed(str(data), model))
                calls.add(part.tool_call_deltas)
                reply.add(part, start)
        reply.tool_calls = calls.calls()

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
            return openai.owners(await self.client.request_json("GET", self.models_path))
        except CrushError:
            return None


def make_engine(
    url: str,
    api: str,
    *,
    timeout: float,
    keep_alive: str = "5m",
    num_ctx: int | None = None,
    api_key: str | None = None,
) -> Engine:
    """'ollama' or 'openai'; 'auto' picks Ollama unless the URL ends in /v1. ``api_key``: sent as a bearer token."""
    if api == "auto":
        api = "openai" if url.rstrip("/").endswith("/v1") else "ollama"
    if api == "ollama":
        return OllamaEngine(url, timeout=timeout, keep_alive=keep_alive, num_ctx=num_ctx, api_key=api_key)
    if api == "openai":
        return OpenAIEngine(url, timeout=timeout, api_key=api_key)
    raise ValueError(f"unknown API {api!r}: ollama, openai or auto")
