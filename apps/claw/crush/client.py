"""An async client for the inference engine on crush, Ollama or llama.cpp, that fails with precise errors.

Shared by the ``crush`` MCP server, the ThreadWeaver chat console and the OpenClaw checks, so it speaks both
engines behind one API and raises only :class:`claw.crush.errors.CrushError` subclasses:

* Ollama's native API: ``/api/version``, ``/api/tags``, ``/api/ps``, ``/api/pull`` (NDJSON progress),
  ``/api/generate`` with ``keep_alive: 0`` to unload, ``/api/chat``.
* llama-cpp-python's OpenAI-compatible server: ``/v1/models`` and ``/v1/chat/completions``; its models are the
  ones Ansible configured, all served, so pull and unload are :class:`UnsupportedOperation`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from claw.crush import errors
from claw.crush.errors import CrushError, EngineDown, EngineError, ModelMissing, UnsupportedOperation

Engine = Literal["ollama", "llamacpp"]
EngineChoice = Literal["auto", "ollama", "llamacpp"]
DEFAULT_TIMEOUT_S = 10.0


class EngineHealth(BaseModel):
    url: str
    reachable: bool = Field(description="The crush node accepted a connection on the engine port")
    ready: bool = Field(description="The engine answered its API")
    engine: Engine | None = None
    version: str | None = Field(None, description="Engine version (Ollama reports one, llama.cpp does not)")
    latency_ms: float = Field(description="Time the probe took, in milliseconds")
    error_code: str | None = None
    error: str | None = None


class ModelInfo(BaseModel):
    name: str
    size_bytes: int | None = None
    family: str | None = None
    parameter_size: str | None = Field(None, description="e.g. 4.0B")
    quantization: str | None = Field(None, description="e.g. Q4_K_M")
    modified_at: str | None = None


class LoadedModel(BaseModel):
    name: str
    size_bytes: int | None = Field(None, description="Memory the loaded model holds")
    size_vram_bytes: int | None = Field(None, description="Part of size_bytes in GPU memory")
    context_length: int | None = None
    expires_at: str | None = Field(None, description="When the engine unloads it if unused")


class PullProgress(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = Field(None, description="Size of this layer in bytes")
    completed: int | None = Field(None, description="Bytes of this layer downloaded")
    overall_total: int = Field(0, description="Sum of the sizes of the layers seen so far")
    overall_completed: int = Field(0, description="Bytes downloaded over all layers seen so far")


class PullResult(BaseModel):
    model: str
    status: str
    total_bytes: int


class UnloadResult(BaseModel):
    model: str
    was_loaded: bool


class ChatChunk(BaseModel):
    content: str
    done_reason: str | None = None


class ChatReply(BaseModel):
    model: str
    content: str
    done_reason: str | None = None
    duration_ms: float


ProgressCallback = Callable[[PullProgress], Awaitable[None] | None]
Messages = Sequence[Mapping[str, Any]]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _with_tag(name: str) -> str:
    # Ollama lists "qwen3" as "qwen3:latest".
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class EngineClient:
    """One engine at ``base_url``. ``engine="auto"`` probes ``/api/version`` (Ollama) then ``/v1/models``."""

    def __init__(
        self,
        base_url: str,
        engine: EngineChoice = "auto",
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.address = errors.address_of(self.base_url)
        self.timeout = timeout
        self._choice: EngineChoice = engine
        self._engine: Engine | None = None if engine == "auto" else engine
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        # The answer that identified the engine: a health probe right after detection uses it instead of asking
        # the same endpoint twice.
        self._detected_answer: Any = None

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        # Created on first use, inside the event loop that uses it; trust_env=False keeps LAN traffic off proxies.
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, transport=self._transport, trust_env=False
            )
        return self._http

    # -- transport: every request goes through _open, the one place errors are mapped -------------------------

    @contextlib.contextmanager
    def _mapped(self, action: str, timeout: float | None) -> Iterator[None]:
        try:
            yield
        except httpx.HTTPError as exc:
            raise errors.from_exception(exc, self.address, action, timeout) from exc

    @contextlib.asynccontextmanager
    async def _open(
        self, method: str, path: str, *, body: Any = None, model: str | None = None, timeout: float | None = None
    ) -> AsyncIterator[httpx.Response]:
        action = f"{method} {path}"
        seconds = timeout or self.timeout
        with self._mapped(action, seconds):
            async with self.http.stream(method, path, json=body, timeout=seconds) as response:
                if response.is_error:
                    raw = await response.aread()
                    error = errors.from_response(
                        response.status_code,
                        raw,
                        address=self.address,
                        action=action,
                        engine=self._engine or "unknown",
                        model=model,
                    )
                    raise await self._completed(error)
                yield response

    async def _json(
        self, method: str, path: str, *, body: Any = None, model: str | None = None, timeout: float | None = None
    ) -> Any:
        async with self._open(method, path, body=body, model=model, timeout=timeout) as response:
            raw = await response.aread()
        try:
            return json.loads(raw)
        except ValueError:
            raise EngineDown(self.address, f"{method} {path} answered something other than JSON") from None

    async def _lines(self, response: httpx.Response, action: str, timeout: float | None = None) -> AsyncIterator[str]:
        with self._mapped(action, timeout or self.timeout):
            async for line in response.aiter_lines():
                if line.strip():
                    yield line

    async def _completed(self, error: CrushError) -> CrushError:
        """A missing model's error with the list of models that are there, so the reader can pick one."""
        if isinstance(error, ModelMissing) and not error.remote and not error.available:
            with contextlib.suppress(CrushError):
                return error.with_available(model.name for model in await self.list_models())
        return error

    def _stream_error(self, obj: Any, model: str | None) -> CrushError | None:
        """An ``{"error": ...}`` object inside a 200 stream (how Ollama reports a failed pull or load)."""
        message = errors.engine_message(obj) if isinstance(obj, dict) and "error" in obj else None
        if message is None:
            return None
        engine = self._engine or "unknown"
        return errors.from_message(message, model=model, engine=engine) or EngineError(message)

    # -- engine detection ----------------------------------------------------------------------------------

    async def engine(self) -> Engine:
        """The engine kind, probed once when the client was made with ``auto``."""
        if self._engine is None:
            self._engine = await self._detect()
        return self._engine

    async def _detect(self) -> Engine:
        # Ollama also serves /v1/models, so its own /api/version is asked first.
        last = "no JSON API"
        probes: tuple[tuple[Engine, str, str], ...] = (
            ("ollama", "/api/version", "version"),
            ("llamacpp", "/v1/models", "data"),
        )
        for engine, path, key in probes:
            try:
                payload = await self._json("GET", path)
            except (EngineDown, EngineError) as err:
                if getattr(err, "refused", False):
                    raise  # nothing listens on the port: no other probe can answer either
                last = getattr(err, "detail", str(err))
                continue
            if isinstance(payload, dict) and key in payload:
                self._detected_answer = payload
                return engine
        raise EngineDown(
            self.address, f"neither Ollama's /api/version nor an OpenAI-compatible /v1/models answers ({last})"
        )

    # -- queries ---------------------------------------------------------------------------------------------

    async def health(self) -> EngineHealth:
        """Probe the engine; never raises a CrushError, the result carries it instead."""
        started = time.perf_counter()
        if self._choice == "auto":
            self._engine = None  # the node may have switched engines since the last probe
        version = None
        try:
            engine = await self.engine()
            answer, self._detected_answer = self._detected_answer, None
            if engine == "ollama":
                payload = answer if answer is not None else await self._json("GET", "/api/version")
                version = _str(payload.get("version")) if isinstance(payload, dict) else None
            else:
                self._openai_models(answer if answer is not None else await self._json("GET", "/v1/models"))
        except CrushError as err:
            return EngineHealth(
                url=self.base_url,
                reachable=not isinstance(err, errors.CrushUnreachable),
                ready=False,
                engine=self._engine,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                error_code=err.code,
                error=str(err),
            )
        return EngineHealth(
            url=self.base_url,
            reachable=True,
            ready=True,
            engine=engine,
            version=version,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _openai_models(self, payload: Any) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise EngineError("GET /v1/models: no 'data' list in the answer")
        return [entry for entry in payload["data"] if isinstance(entry, dict) and _str(entry.get("id"))]

    def _ollama_models(self, payload: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("models"), list):
            raise EngineError(f"GET {path}: no 'models' list in the answer")
        return [e for e in payload["models"] if isinstance(e, dict) and _str(e.get("name") or e.get("model"))]

    async def list_models(self) -> list[ModelInfo]:
        """Models the engine can serve (Ollama: downloaded; llama.cpp: configured)."""
        if await self.engine() == "llamacpp":
            return [
                ModelInfo(name=entry["id"], size_bytes=_int((entry.get("meta") or {}).get("size")))
                for entry in self._openai_models(await self._json("GET", "/v1/models"))
            ]
        models = []
        for entry in self._ollama_models(await self._json("GET", "/api/tags"), "/api/tags"):
            details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
            models.append(
                ModelInfo(
                    name=entry.get("name") or entry["model"],
                    size_bytes=_int(entry.get("size")),
                    family=_str(details.get("family")),
                    parameter_size=_str(details.get("parameter_size")),
                    quantization=_str(details.get("quantization_level")),
                    modified_at=_str(entry.get("modified_at")),
                )
            )
        return models

    async def loaded_models(self) -> list[LoadedModel]:
        """Models in memory now (llama.cpp keeps its served models loaded, so those)."""
        if await self.engine() == "llamacpp":
            return [
                LoadedModel(name=entry["id"], size_bytes=_int((entry.get("meta") or {}).get("size")))
                for entry in self._openai_models(await self._json("GET", "/v1/models"))
            ]
        return [
            LoadedModel(
                name=entry.get("name") or entry["model"],
                size_bytes=_int(entry.get("size")),
                size_vram_bytes=_int(entry.get("size_vram")),
                context_length=_int(entry.get("context_length")) or None,
                expires_at=_str(entry.get("expires_at")),
            )
            for entry in self._ollama_models(await self._json("GET", "/api/ps"), "/api/ps")
        ]

    # -- changes (Ollama only) -----------------------------------------------------------------------------

    async def _require_ollama(self, operation: str) -> None:
        engine = await self.engine()
        if engine != "ollama":
            raise UnsupportedOperation(operation, engine)

    async def pull_model(self, name: str, progress_callback: ProgressCallback | None = None) -> PullResult:
        """Download ``name`` from the Ollama library, calling ``progress_callback`` per progress line."""
        await self._require_ollama("pull_model")
        totals: dict[str, int] = {}
        done: dict[str, int] = {}
        status = ""
        action = "POST /api/pull"
        async with self._open("POST", "/api/pull", body={"model": name, "stream": True}, model=name) as response:
            async for line in self._lines(response, action):
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise EngineDown(self.address, f"{action} streamed something other than JSON lines") from None
                failure = self._stream_error(obj, name)
                if failure is not None:
                    raise await self._completed(failure)
                status = str(obj.get("status", ""))
                digest = _str(obj.get("digest"))
                if digest and _int(obj.get("total")):
                    totals[digest] = obj["total"]
                    done[digest] = max(done.get(digest, 0), _int(obj.get("completed")) or 0)
                if progress_callback is not None:
                    progress = PullProgress(
                        status=status,
                        digest=digest,
                        total=_int(obj.get("total")),
                        completed=_int(obj.get("completed")),
                        overall_total=sum(totals.values()),
                        overall_completed=sum(done.values()),
                    )
                    result = progress_callback(progress)
                    if inspect.isawaitable(result):
                        await result
        if status != "success":
            raise EngineError(f"the pull of '{name}' ended before success (last status: {status or 'none'})")
        return PullResult(model=name, status=status, total_bytes=sum(totals.values()))

    async def unload_model(self, name: str) -> UnloadResult:
        """Free the memory ``name`` holds; succeeds without change when it is not loaded."""
        await self._require_ollama("unload_model")
        loaded = {_with_tag(model.name) for model in await self.loaded_models()}
        await self._json("POST", "/api/generate", body={"model": name, "keep_alive": 0, "stream": False}, model=name)
        return UnloadResult(model=name, was_loaded=_with_tag(name) in loaded)

    # -- chat (enough for smoke tests and a console) -----------------------------------------------------------

    async def _check_served(self, model: str) -> None:
        # llama-cpp-python answers an unknown model name with its default model, so the name is checked first.
        names = [entry["id"] for entry in self._openai_models(await self._json("GET", "/v1/models"))]
        if model not in names:
            raise ModelMissing(model, names, can_pull=False)

    async def stream_chat(
        self, model: str, messages: Messages, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """The reply as it is generated; the last chunk carries ``done_reason``. ``timeout`` bounds each wait
        for the next piece (the client's timeout when None)."""
        engine = await self.engine()
        body = {"model": model, "messages": list(messages), "stream": True}
        if engine == "llamacpp":
            await self._check_served(model)
        path = "/api/chat" if engine == "ollama" else "/v1/chat/completions"
        async with self._open("POST", path, body=body, model=model, timeout=timeout) as response:
            async for line in self._lines(response, f"POST {path}", timeout):
                chunk = self._chunk(line, engine, model)
                if chunk is None:
                    return
                if chunk.content or chunk.done_reason:
                    yield chunk

    def _chunk(self, line: str, engine: Engine, model: str) -> ChatChunk | None:
        """One streamed line as a chunk; None at llama.cpp's ``data: [DONE]``."""
        if engine == "llamacpp":
            if not line.startswith("data:"):
                return ChatChunk(content="")  # SSE comments and keep-alives
            line = line[len("data:") :].strip()
            if line == "[DONE]":
                return None
        try:
            obj = json.loads(line)
        except ValueError:
            raise EngineDown(self.address, "the chat stream carried something other than JSON") from None
        failure = self._stream_error(obj, model)
        if failure is not None:
            raise failure
        if engine == "ollama":
            message = obj.get("message") or {}
            reason = _str(obj.get("done_reason")) or ("stop" if obj.get("done") else None)
            return ChatChunk(content=str(message.get("content") or ""), done_reason=reason)
        choice = (obj.get("choices") or [{}])[0]
        delta = choice.get("delta") or {}
        return ChatChunk(content=str(delta.get("content") or ""), done_reason=_str(choice.get("finish_reason")))

    async def chat(
        self, model: str, messages: Messages, stream: bool = False, timeout: float | None = None
    ) -> ChatReply:
        """One complete reply; ``stream=True`` gets it through the engine's streaming protocol. Without streaming
        ``timeout`` must cover the whole generation (a model load on crush can take tens of seconds)."""
        started = time.perf_counter()
        if stream:
            parts: list[str] = []
            reason = None
            async for chunk in self.stream_chat(model, messages, timeout):
                parts.append(chunk.content)
                reason = chunk.done_reason or reason
            content = "".join(parts)
        else:
            content, reason = await self._chat_once(model, messages, timeout)
        return ChatReply(
            model=model, content=content, done_reason=reason, duration_ms=round((time.perf_counter() - started) * 1000)
        )

    async def _chat_once(self, model: str, messages: Messages, timeout: float | None) -> tuple[str, str | None]:
        body = {"model": model, "messages": list(messages), "stream": False}
        if await self.engine() == "ollama":
            obj = await self._json("POST", "/api/chat", body=body, model=model, timeout=timeout)
            failure = self._stream_error(obj, model)
            if failure is not None:
                raise failure
            return str((obj.get("message") or {}).get("content") or ""), _str(obj.get("done_reason"))
        await self._check_served(model)
        obj = await self._json("POST", "/v1/chat/completions", body=body, model=model, timeout=timeout)
        try:
            choice = obj["choices"][0]
            return str(choice["message"].get("content") or ""), _str(choice.get("finish_reason"))
        except (KeyError, IndexError, TypeError, AttributeError):
            raise EngineError("POST /v1/chat/completions: no choices in the answer") from None
