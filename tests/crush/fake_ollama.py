"""A fake Ollama speaking its native API with real-shaped answers (shapes from Ollama 0.12 and docs/api.md).

GET /api/version, /api/tags, /api/ps; POST /api/pull (NDJSON progress, errors as an ``{"error"}`` line in a 200
stream), /api/generate (``keep_alive: 0`` unloads), /api/chat (JSON or NDJSON), /api/show. Errors are
``{"error": "..."}`` with 404 for a missing model and 500 for a model that does not fit in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.crush.fake_http import Behaviour, Gate

CREATED_AT = "2025-07-14T10:29:36.211543213+02:00"
NDJSON = "application/x-ndjson"


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


@dataclass
class FakeOllama(Behaviour):
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
        ]

        async def not_found(_request: Request, _exc: Exception) -> Response:
            return PlainTextResponse("404 page not found", 404)  # what Ollama's gin router says

        return Gate(Starlette(routes=routes, exception_handlers={404: not_found}), self)

    async def _body(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append((request.method, request.url.path, body))
        return body

    def _missing(self, name: str) -> JSONResponse:
        return JSONResponse({"error": f"model '{name}' not found"}, 404)

    def _load(self, name: str) -> JSONResponse | None:
        """The error answer when ``name`` cannot be loaded, else None (and it is loaded)."""
        if name not in self.models:
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
            for name, size in self.models.items()
        ]
        return JSONResponse({"models": models})

    async def ps(self, _request: Request) -> JSONResponse:
        models = [
            {
                "name": name,
                "model": name,
                "size": self.models[name] + 600_000_000,
                "digest": digest_of(name)[7:],
                "details": details(name),
                "expires_at": "2025-07-14T10:34:36.211543213+02:00",
                "size_vram": self.models[name],
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
            if name not in self.models:
                return self._missing(name)
            self.loaded.pop(name, None)
            return JSONResponse(
                {"model": name, "created_at": CREATED_AT, "response": "", "done": True, "done_reason": "unload"}
            )
        failure = self._load(name)
        if failure is not None:
            return failure
        return JSONResponse(
            {"model": name, "created_at": CREATED_AT, "response": "OK", "done": True, "done_reason": "stop"}
        )

    async def chat(self, request: Request) -> Response:
        body = await self._body(request)
        name = body.get("model", "")
        failure = self._load(name)
        if failure is not None:
            return failure
        words = ["Hello", " from", f" {name}"]
        final = {
            "model": name,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": "" if body.get("stream", True) else "".join(words)},
            "done_reason": "stop",
            "done": True,
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 342546000,
            "eval_count": len(words),
            "eval_duration": 4535599000,
        }
        if not body.get("stream", True):
            return JSONResponse(final)

        async def lines() -> AsyncIterator[str]:
            for word in words:
                chunk = {"model": name, "created_at": CREATED_AT, "message": {"role": "assistant", "content": word}}
                yield json.dumps({**chunk, "done": False}) + "\n"
            yield json.dumps(final) + "\n"

        return StreamingResponse(lines(), media_type=NDJSON)

    async def show(self, request: Request) -> JSONResponse:
        name = (await self._body(request)).get("model", "")
        if name not in self.models:
            return self._missing(name)
        return JSONResponse({"modelfile": f"FROM {name}", "details": details(name), "capabilities": ["completion"]})
