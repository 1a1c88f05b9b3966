"""Fake inference engines speaking the real wire formats (one double a protocol), on a real socket
(``tests.doubles.http.serve(fake)``) or in process (``httpx.AsyncClient(transport=fake.transport())``):

* :class:`FakeLlamaCpp`: llama-cpp-python's OpenAI-compatible server (shapes from llama_cpp/server/app.py and
  errors.py): ``GET /v1/models``; ``POST /v1/chat/completions``, JSON or server-sent events ending in
  ``data: [DONE]``. Like the real one it answers an unknown model name with its default model; a configured model
  whose file is gone is 400 ``model_not_found``, a failed allocation 500, both OpenAI-style ``{"error": {...}}``.
* :class:`FakeOllama`: Ollama's native API (shapes from Ollama 0.12 and docs/api.md): ``GET /api/version``,
  ``/api/tags``, ``/api/ps``; ``POST /api/pull`` (NDJSON progress, errors as an ``{"error"}`` line in a 200
  stream), ``/api/generate`` (``keep_alive: 0`` unloads), ``/api/chat`` (JSON or NDJSON, tool calls with object
  arguments), ``/api/show``; and, as Ollama does, the OpenAI-compatible ``/v1`` (which 404s an unknown model).

Both answer chat from ``replies`` if given (:class:`Reply`: text, tool calls, token counts or an error body, each
in turn, whatever the model; what the ThreadWeaver tests pin), else from scripts (:func:`say`, :func:`call`: the
step is the number of assistant messages already in the request, so the fake keeps no conversation state), else
"Hello from MODEL". Failure modes in front of either come from :class:`tests.doubles.http.Behaviour`.
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

from tests.doubles.http import Behaviour, Gate, InProcess

MODELS_DIR = "/var/lib/llamacpp/models"
PROMPT_TOKENS = 26  # what a scripted answer says the prompt counted
CREATED_AT = "2025-07-14T10:29:36.211543213+02:00"
NDJSON = "application/x-ndjson"
Step = dict[str, Any]  # {"text": "..."} or {"tools": [(name, arguments), ...]}


def say(text: str | Callable[[], str]) -> Step:
    """A reply; a callable text is called when the fake answers."""
    return {"text": text}


def call(name: str, **arguments: Any) -> Step:
    return {"tools": [(name, arguments)]}


def pieces(text: str) -> list[str]:
    """How a streamed text is split: word by word, each with the white space around it (joined, the text)."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


@dataclass
class Reply:
    """One answer with everything pinned. The provider fakes (:mod:`tests.doubles.providers`) answer from these,
    and so do the engines given ``replies``."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"id" (optional), "name", "arguments": dict}]
    input_tokens: int = 11
    output_tokens: int = 7
    status: int = 200
    error: dict[str, Any] | None = None  # an error body to answer with `status`
    chunks: list[str] | None = None  # how a streamed text is split (default: pieces(text))

    def streamed(self) -> list[str]:
        return self.chunks if self.chunks is not None else pieces(self.text)


def next_reply(replies: list[Reply]) -> Reply:
    """The next of a non-empty script of replies: each in turn, then the last one again and again."""
    return replies.pop(0) if len(replies) > 1 else replies[0]


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
    """What both fakes share: request log, replies and chat scripts, the OpenAI-compatible chat answer, and the
    in-process transport."""

    replies: list[Reply] = field(default_factory=list)  # answered in turn, before any script
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

    def app(self) -> Gate:
        raise NotImplementedError

    def transport(self) -> InProcess:
        """The fake without a socket, for ``httpx.AsyncClient(transport=...)``: the same app, the same log."""
        return InProcess(self.app(), self)

    def reply(self, model: str, messages: list[dict[str, Any]]) -> Reply:
        """The next of ``replies`` if there are any, else the script's step for this point of the conversation."""
        if self.replies:
            return next_reply(self.replies)
        prompt = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        script = self.router(prompt) if model == "router" and self.router else self.scripts.get(model)
        if script is None:
            step: Step = say(f"Hello from {model}")
        else:
            script = script or [say("")]
            step = script[min(sum(1 for m in messages if m.get("role") == "assistant"), len(script) - 1)]
        if callable(step.get("text")):
            step = {**step, "text": step["text"]()}
        site = re.search(r"http://127\.0\.0\.1:\d+", prompt)
        step = json.loads(json.dumps(step).replace("{site}", site.group(0) if site else ""))
        text = step.get("text", "")
        calls = [{"name": name, "arguments": arguments} for name, arguments in step.get("tools", [])]
        return Reply(text, calls, input_tokens=PROMPT_TOKENS, output_tokens=len(pieces(text)))

    async def _pause(self, model: str) -> None:
        if model in self.slow:
            await anyio.sleep(self.slow[model])

    def openai_chat(self, body: dict[str, Any], model: str, *, usage_in_stream: bool) -> Response:
        """A ``chat.completion`` answer, or its SSE stream with tool call arguments in two fragments each."""
        reply = self.reply(model, body.get("messages", []))
        if reply.error is not None:
            return JSONResponse(reply.error, reply.status)
        text = reply.text
        calls = [
            (call.get("id") or f"call_{i}", call["name"], json.dumps(call["arguments"]))
            for i, call in enumerate(reply.tool_calls)
        ]
        finish = "tool_calls" if calls else "stop"
        tokens = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens}
        usage = {**tokens, "total_tokens": reply.input_tokens + reply.output_tokens}
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
            for piece in reply.streamed():
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


class FakeOllama(Scripted):
    """Ollama, the one double of it: on a socket for the engine client, the MCP server and SMEEP; in process
    (:meth:`transport`, or ``tests.doubles.providers.adapter(fake)``) for ThreadWeaver, there with ``replies`` (any
    model then answers) and ``mode = "refused"`` for a refused connection. Requests are logged as ``(method, path,
    body)``; ``bodies`` are the bodies."""

    kind = "crush"  # the ThreadWeaver provider kind that speaks to it

    def __init__(
        self,
        *replies: Reply,
        version: str = "0.12.6",
        models: dict[str, int] | None = None,
        loaded: dict[str, int] | None = None,
        library: dict[str, tuple[int, ...]] | None = None,
        oom: dict[str, tuple[str, str]] | None = None,
        offline: bool = False,
        **scripted: Any,
    ) -> None:
        super().__init__(replies=list(replies), **scripted)
        self.version = version
        # name -> size in bytes of the models on disk
        self.models = {"qwen3:4b": 2497293931, "llama3.2:1b": 1321098329} if models is None else models
        # name -> context length of the models in memory
        self.loaded = {"qwen3:4b": 4096} if loaded is None else loaded
        # name -> layer sizes of what the "Ollama library" offers to pull
        self.library = {"gemma3:270m": (291548160, 8432, 358)} if library is None else library
        # name -> (needed, available) for models that do not fit in memory
        self.oom = {} if oom is None else oom
        self.offline = offline  # the node cannot reach the registry

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
        scripted = self.scripted(name) or name in self.slow or name in self.broken
        return name in self.models or scripted or bool(self.replies)

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
        reply = self.reply(name, body.get("messages", []))
        if reply.error is not None:
            return JSONResponse(reply.error, reply.status)
        calls = [{"function": {"name": c["name"], "arguments": c["arguments"]}} for c in reply.tool_calls]
        words = reply.streamed()
        stream = body.get("stream", True)
        content = "" if stream else reply.text
        message = {"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})}
        final = {
            "model": name,
            "created_at": CREATED_AT,
            "message": message if not stream else {"role": "assistant", "content": ""},
            "done_reason": "stop",
            "done": True,
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": reply.input_tokens,
            "prompt_eval_duration": 342546000,
            "eval_count": reply.output_tokens,
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
