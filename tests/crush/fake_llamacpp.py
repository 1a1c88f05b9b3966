"""A fake llama-cpp-python server (its OpenAI-compatible API, shapes from llama_cpp/server/app.py and errors.py).

GET /v1/models; POST /v1/chat/completions, JSON or server-sent events ending in ``data: [DONE]``. Like the real
one it answers an unknown model name with its default model; a configured model whose file is gone is 400
``model_not_found``, a failed allocation 500 ``internal_server_error``, both OpenAI-style ``{"error": {...}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.crush.fake_http import Behaviour, Gate

MODELS_DIR = "/var/lib/llamacpp/models"


def openai_error(message: str, kind: str, code: str | None, status: int) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status)


@dataclass
class FakeLlamaCpp(Behaviour):
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
        body = await request.json()
        self.requests.append((request.method, request.url.path, body))
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
        words = ["Hello", " from", f" {model}"]
        base = {"id": "chatcmpl-5f0b6e21", "created": int(time.time()), "model": body.get("model") or model}
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(words)},
                "logprobs": None,
                "finish_reason": "stop",
            }
            usage = {"prompt_tokens": 12, "completion_tokens": len(words), "total_tokens": 12 + len(words)}
            return JSONResponse({**base, "object": "chat.completion", "choices": [choice], "usage": usage})

        def event(delta: dict[str, Any], finish: str | None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': [choice]})}\r\n\r\n"

        async def events() -> AsyncIterator[str]:
            yield event({"role": "assistant"}, None)
            for word in words:
                yield event({"content": word}, None)
            yield event({}, "stop")
            yield "data: [DONE]\r\n\r\n"

        return StreamingResponse(events(), media_type="text/event-stream")
