"""Fake inference engines on real sockets, speaking the real wire formats (one double a protocol):

* :class:`FakeLlamaCpp`: llama-cpp-python's OpenAI-compatible server (shapes from llama_cpp/server/app.py and
  errors.py): ``GET /v1/models``; ``POST /v1/chat/completions``, JSON or server-sent events ending in
  ``data: [DONE]``. Like the real one it answers an unknown model name with its default model; a configured model
  whose file is gone is 400 ``model_not_found``, a failed allocation 500, both OpenAI-style ``{"error": {...}}``.
* :class:`FakeOllama`: Ollama's native API (shapes from Ollama 0.12 and docs/api.md): ``GET /api/version``,
  ``/api/tags``, ``/api/ps``; ``POST /api/pull`` (NDJSON progress, errors as an ``{"error"}`` line in a 200
  stream), ``/api/generate`` (``keep_alive: 0`` unloads), ``/api/chat`` (JSON or NDJSON, tool calls with object
  arguments), ``/api/show``; and, as Ollama does, the OpenAI-compatible ``/v1`` (which 404s an unknown model).

Both answer chat from scripts (:func:`say`, :func:`call`: the step is the number of assistant messages already in
the request, so the fake keeps no conversation state), else "Hello from MODEL". Failure modes in front of either
come from :class:`tests.doubles.http.Behaviour`. Serve one with ``tests.doubles.http.serve(fake)``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.doubles.http import Behaviour, Gate

MODELS_DIR = "/var/lib/llamacpp/models"
CREATED_AT = "2025-07-14T10:29:36.211543213+02:00"
NDJSON = "application/x-ndjson"
Step = dict[str, Any]  # {"text": "..."} or {"tools": [(name, arguments), ...]}


def say(text: str | Callable[[], str]) -> Step:
    """A reply; a callable text is called when the fake answers."""
    return {"text": text}


def call(name: str, **arguments: Any) -> Step:
    return {"tools": [(name, arguments)]}


def pieces(text: str) -> list[str]:
    """How a streamed text is split: word by word, each with its following space."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i == 0] if text else []


def digest_of(name: str, index: int = 0) -> str:
    return "sha256:" + hashlib.sha256(f"{name}/{index}".encode()).hexdigest()


def details(name: str) -> dict[str, Any]:
    family = name.split(":")[0].rstrip("0123456789.")
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "4.0B",
        "quantization_level": "Q4_K_M",
    }


def openai_error(message: str, kind: str, code: str | None, status: int) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status)


@dataclass
class Scripted(Behaviour):
    """What both fakes share: request log, chat scripts, and the OpenAI-compatible chat answer."""

    scripts: dict[str, list[Step]] = field(default_factory=dict)
    # model "router": the script is chosen by the user's prompt (several tasks, one model)
    router: Callable[[str], list[Step]] | None = None
    slow: dict[str, float] = field(default_factory=dict)  # model -> seconds before a chat answer
    broken: set[str] = field(default_factory=set)  # models whose chat answers 500

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append((request.method, request.url.path, body))
        return body

    def scripted(self, name: str) -> bool:
        return name in self.scripts or (name == "router" and self.router is not None)

    def step(self, model: str, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """The reply's text and tool calls for this point of the conversation."""
        prompt = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        script = self.router(prompt) if model == "router" and self.router else self.scripts.get(model)
        if script is None:
            return f"Hello from {model}", []
        script = script or [say("")]
        step = script[min(sum(1 for m in messages if m.get("role") == "assistant"), len(script) - 1)]
        if callable(step.get("text")):
            step = {**step, "text": step["text"]()}
        site = re.search(r"http://127\.0\.0\.1:\d+", prompt)
        step = json.loads(json.dumps(step).replace("{site}", site.group(0) if site else ""))
        return step.get("text", ""), [tuple(pair) for pair in step.get("tools", [])]

    async def _pause(self, model: str) -> None:
        if model in self.slow:
            await anyio.sleep(self.slow[model])

    def openai_chat(self, body: dict[str, Any], model: str, *, usage_in_stream: bool) -> Response:
        """A ``chat.completion`` answer, or its SSE stream with tool call arguments in two fragments each."""
        text, tools = self.step(model, body.get("messages", []))
        calls = [(f"call_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(tools)]
        finish = "tool_calls" if calls else "stop"
        tokens = len(pieces(text)) or 1
        usage = {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens}
        base = {"id": "chatcmpl-5f0b6e21", "created": int(time.time()), "model": body.get("model") or model}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return JSONResponse({**base, "object": "chat.completion", "choices": [choice], "usage": usage})

        def event(delta: dict[str, Any] | None, finish: str | None = None, **more: Any) -> str:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            data = {**base, "object": "chat.completion.chunk", "choices": choices, **more}
            return f"data: {json.dumps(data)}\r\n\r\n"

        async def events() -> AsyncIterator[str]:
            yield event({"role": "assistant", "content": ""})
            for piece in pieces(text):
                yield event({"content": piece})
            for index, (ident, name, arguments) in enumerate(calls):
                half = len(arguments) // 2
                head = {"index": index, "id": ident, "type": "function"}
                yield event({"tool_calls": [{**head, "function": {"name": name, "arguments": arguments[:half]}}]})
                yield event({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]})
            yield event({}, finish)
            if usage_in_stream and (body.get("stream_options") or {}).get("include_usage"):
                yield event(None, usage=usage)
            yield "data: [DONE]\r\n\r\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@dataclass
class FakeLlamaCpp(Scripted):
    # aliases served, the first is the default model
    served: list[str] = field(default_factory=lambda: ["gemma3-270m", "qwen2.5-1.5b"])
    missing_files: set[str] = field(default_factory=set)
    oom: set[str] = field(default_factory=set)

    def app(self) -> Gate:
        routes = [
            Route("/v1/models", self.models),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
        ]

        async def not_found(_request: Request, _exc: Exception) -> Response:
            return JSONResponse({"detail": "Not Found"}, 404)  # FastAPI's answer

        return Gate(Starlette(routes=routes, exception_handlers={404: not_found}), self)

    async def models(self, _request: Request) -> JSONResponse:
        data = [{"id": alias, "object": "model", "owned_by": "me", "permissions": []} for alias in self.served]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        body = await self._body(request)
        model = body.get("model") if body.get("model") in self.served else self.served[0]
        if model in self.missing_files:
            message = f"The model `{MODELS_DIR}/{model}.gguf` does not exist"
            return openai_error(message, "invalid_request_error", "model_not_found", 400)
        if model in self.oom:
            message = (
                "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 2304.00 MiB on device 0: "
                "cudaMalloc failed: out of memory"
            )
            return openai_error(message, "internal_server_error", None, 500)
        await self._pause(model)
        return self.openai_chat(body, model, usage_in_stream=False)


@dataclass
class FakeOllama(Scripted):
    version: str = "0.12.6"
    # name -> size in bytes of the models on disk
    models: dict[str, int] = field(default_factory=lambda: {"qwen3:4b": 2497293931, "llama3.2:1b": 1321098329})
    # name -> context length of the models in memory
    loaded: dict[str, int] = field(default_factory=lambda: {"qwen3:4b": 4096})
    # name -> layer sizes of what the "Ollama library" offers to pull
    library: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"gemma3:270m": (291548160, 8432, 358)})
    # name -> (needed, available) for models that do not fit in memory
    oom: dict[str, tuple[str, str]] = field(default_factory=dict)
    offline: bool = False  # the node cannot reach the registry

    def app(self) -> Gate:
        routes = [
            Route("/", lambda _: PlainTextResponse("Ollama is running")),
            Route("/api/version", lambda _: JSONResponse({"version": self.version})),
            Route("/api/tags", self.tags),
            Route("/api/ps", self.ps),
            Route("/api/pull", self.pull, methods=["POST"]),
            Route("/api/generate", self.generate, methods=["POST"]),
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/show", self.show, methods=["POST"]),
            Route("/v1/models", self.openai_models),
            Route("/v1/chat/completions", self.openai_completions, methods=["POST"]),
        ]

        async def not_found(_request: Request, _exc: Exception) -> Response:
            return PlainTextResponse("404 page not found", 404)  # what Ollama's gin router says

        return Gate(Starlette(routes=routes, exception_handlers={404: not_found}), self)

    def _missing(self, name: str) -> JSONResponse:
        return JSONResponse({"error": f"model '{name}' not found"}, 404)

    def known(self, name: str) -> bool:
        return name in self.models or self.scripted(name) or name in self.slow or name in self.broken

    def _load(self, name: str) -> JSONResponse | None:
        """The error answer when ``name`` cannot be loaded, else None (and it is loaded)."""
        if not self.known(name):
            return self._missing(name)
        if name in self.oom:
            needed, available = self.oom[name]
            message = f"model requires more system memory ({needed}) than is available ({available})"
            return JSONResponse({"error": message}, 500)
        self.loaded.setdefault(name, 4096)
        return None

    async def tags(self, _request: Request) -> JSONResponse:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": CREATED_AT,
                "size": size,
                "digest": digest_of(name)[7:],
                "details": details(name),
            }
            for name, size in {**dict.fromkeys(self.scripts, 1 << 28), **self.models}.items()
        ]
        return JSONResponse({"models": models})

    async def ps(self, _request: Request) -> JSONResponse:
        models = [
            {
                "name": name,
                "model": name,
                "size": self.models.get(name, 1 << 28) + 600_000_000,
                "digest": digest_of(name)[7:],
                "details": details(name),
                "expires_at": "2025-07-14T10:34:36.211543213+02:00",
                "size_vram": self.models.get(name, 1 << 28),
                "context_length": context,
            }
            for name, context in self.loaded.items()
        ]
        return JSONResponse({"models": models})

    async def pull(self, request: Request) -> StreamingResponse:
        name = (await self._body(request)).get("model", "")

        async def lines() -> AsyncIterator[str]:
            yield json.dumps({"status": "pulling manifest"}) + "\n"
            if self.offline:
                error = (
                    f'pull model manifest: Get "https://registry.ollama.ai/v2/library/{name}/manifests/latest": '
                    "dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: server misbehaving"
                )
                yield json.dumps({"error": error}) + "\n"
                return
            if name not in self.library:
                yield json.dumps({"error": "pull model manifest: file does not exist"}) + "\n"
                return
            for index, size in enumerate(self.library[name]):
                digest = digest_of(name, index)
                status = f"pulling {digest[7:19]}"
                yield json.dumps({"status": status, "digest": digest, "total": size}) + "\n"
                for completed in (size // 2, size):
                    yield json.dumps({"status": status, "digest": digest, "total": size, "completed": completed}) + "\n"
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield json.dumps({"status": status}) + "\n"
            self.models[name] = sum(self.library[name])

        return StreamingResponse(lines(), media_type=NDJSON)

    async def generate(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        name = body.get("model", "")
        if body.get("keep_alive") == 0 and not body.get("prompt"):
            if not self.known(name):
                return self._missing(name)
            self.loaded.pop(name, None)
            return JSONResponse(
                {"model": name, "created_at": CREATED_AT, "response": "", "done": True, "done_reason": "unload"}
            )
        failure = self._load(name)
        if failure is not None:
            return failure
        answer = {"model": name, "created_at": CREATED_AT, "response": "OK", "done": True, "done_reason": "stop"}
        return JSONResponse({**answer, "load_duration": 120_000_000})

    async def chat(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("model", "")
        failure = self._load(name)
        if failure is not None:
            return failure
        if name in self.broken:
            return JSONResponse({"error": "engine fell over"}, 500)
        for message in body.get("messages", []):
            for tool_call in message.get("tool_calls") or []:
                if not isinstance((tool_call.get("function") or {}).get("arguments"), dict):
                    error = (
                        "json: cannot unmarshal string into Go struct field"
                        " .messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments"
                    )
                    return JSONResponse({"error": error}, 400)
        await self._pause(name)
        text, tools = self.step(name, body.get("messages", []))
        calls = [{"function": {"name": n, "arguments": a}} for n, a in tools]
        words = pieces(text)
        stream = body.get("stream", True)
        message = {"role": "assistant", "content": "" if stream else text, **({"tool_calls": calls} if calls else {})}
        final = {
            "model": name,
            "created_at": CREATED_AT,
            "message": message if not stream else {"role": "assistant", "content": ""},
            "done_reason": "stop",
            "done": True,
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 342546000,
            "eval_count": len(words),
            "eval_duration": 4535599000,
        }
        if not stream:
            return JSONResponse(final)

        async def lines() -> AsyncIterator[str]:
            for word in words:
                chunk = {"model": name, "created_at": CREATED_AT, "message": {"role": "assistant", "content": word}}
                yield json.dumps({**chunk, "done": False}) + "\n"
            if calls:
                chunk = {"model": name, "created_at": CREATED_AT, "message": {**message, "content": ""}}
                yield json.dumps({**chunk, "done": False}) + "\n"
            yield json.dumps(final) + "\n"

        return StreamingResponse(lines(), media_type=NDJSON)

    async def openai_models(self, _request: Request) -> JSONResponse:
        names = [*self.models, *(n for n in self.scripts if n not in self.models)]
        data = [{"id": name, "object": "model", "created": 1752482976, "owned_by": "library"} for name in names]
        return JSONResponse({"object": "list", "data": data})

    async def openai_completions(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("model", "")
        if not self.known(name):
            message = f'model "{name}" not found, try pulling it first'
            return openai_error(message, "api_error", None, 404)
        if name in self.broken:
            return openai_error("engine fell over", "api_error", None, 500)
        await self._pause(name)
        return self.openai_chat(body, name, usage_in_stream=True)

    async def show(self, request: Request) -> JSONResponse:
        name = (await self._body(request)).get("model", "")
        if not self.known(name):
            return self._missing(name)
        return JSONResponse({"modelfile": f"FROM {name}", "details": details(name), "capabilities": ["completion"]})
