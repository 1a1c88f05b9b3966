"""The async client for the inference engine on crush, Ollama or llama.cpp, that fails with precise errors.

Shared by the ``crush`` MCP server, the ThreadWeaver console, ``claw status`` and the OpenClaw checks, so it speaks
both engines behind one API and raises only :class:`claw.engine.errors.CrushError` subclasses:

* Ollama's native API (:mod:`claw.engine.ollama`): version, tags, ps, pull (NDJSON progress), generate with
  ``keep_alive: 0`` to unload, chat.
* llama-cpp-python's OpenAI-compatible server (:mod:`claw.engine.openai`): ``/v1/models`` and
  ``/v1/chat/completions``; its models are the ones Ansible configured, all served, so pull and unload are
  :class:`UnsupportedOperation`.

Bodies and answers are built and parsed by those dialect modules; this module only sends and maps failures.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from claw.engine import errors, ollama, openai
from claw.engine.errors import CrushError, EngineDown, EngineError, ModelMissing, UnsupportedOperation
from claw.engine.models import (
    ChatChunk,
    ChatReply,
    EngineHealth,
    ProgressCallback,
    PullProgress,
    PullResult,
    UnloadResult,
)
from claw.engine.records import ChatPart, Engine, EngineChoice, LoadedModel, Messages, ModelInfo, as_int, as_str

DEFAULT_TIMEOUT_S = 10.0


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

    # -- transport: every request goes through request(), the one place errors are mapped -------------------------

    @contextlib.contextmanager
    def _mapped(self, action: str, timeout: float | None) -> Iterator[None]:
        try:
            yield
        except httpx.HTTPError as exc:
            raise errors.from_exception(exc, self.address, action, timeout) from exc

    @contextlib.asynccontextmanager
    async def request(
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

    async def request_json(
        self, method: str, path: str, *, body: Any = None, model: str | None = None, timeout: float | None = None
    ) -> Any:
        async with self.request(method, path, body=body, model=model, timeout=timeout) as response:
            raw = await response.aread()
        try:
            return json.loads(raw)
        except ValueError:
            raise EngineDown(self.address, f"{method} {path} answered something other than JSON") from None

    async def lines(self, response: httpx.Response, action: str, timeout: float | None = None) -> AsyncIterator[str]:
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
        return ollama.stream_error(obj, model, self._engine or "unknown")

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
            ("ollama", ollama.VERSION, "version"),
            ("llamacpp", openai.MODELS, "data"),
        )
        for engine, path, key in probes:
            try:
                payload = await self.request_json("GET", path)
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
                version = ollama.version(
                    answer if answer is not None else await self.request_json("GET", ollama.VERSION)
                )
            else:
                openai.entries(answer if answer is not None else await self.request_json("GET", openai.MODELS))
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

    async def list_models(self) -> list[ModelInfo]:
        """Models the engine can serve (Ollama: downloaded; llama.cpp: configured)."""
        if await self.engine() == "llamacpp":
            return openai.model_infos(await self.request_json("GET", openai.MODELS))
        return ollama.model_infos(await self.request_json("GET", ollama.TAGS))

    async def loaded_models(self) -> list[LoadedModel]:
        """Models in memory now (llama.cpp keeps its served models loaded, so those)."""
        if await self.engine() == "llamacpp":
            return openai.loaded_models(await self.request_json("GET", openai.MODELS))
        return ollama.loaded_models(await self.request_json("GET", ollama.PS))

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
        action = f"POST {ollama.PULL}"
        async with self.request("POST", ollama.PULL, body={"model": name, "stream": True}, model=name) as response:
            async for line in self.lines(response, action):
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise EngineDown(self.address, f"{action} streamed something other than JSON lines") from None
                failure = self._stream_error(obj, name)
                if failure is not None:
                    raise await self._completed(failure)
                status = str(obj.get("status", ""))
                digest = as_str(obj.get("digest"))
                if digest and as_int(obj.get("total")):
                    totals[digest] = obj["total"]
                    done[digest] = max(done.get(digest, 0), as_int(obj.get("completed")) or 0)
                if progress_callback is not None:
                    progress = PullProgress(
                        status=status,
                        digest=digest,
                        total=as_int(obj.get("total")),
                        completed=as_int(obj.get("completed")),
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
        loaded = {ollama.with_tag(model.name) for model in await self.loaded_models()}
        await self.request_json("POST", ollama.GENERATE, body=ollama.unload_body(name), model=name)
        return UnloadResult(model=name, was_loaded=ollama.with_tag(name) in loaded)

    # -- chat (enough for smoke tests and a console) -----------------------------------------------------------

    async def _check_served(self, model: str) -> None:
        # llama-cpp-python answers an unknown model name with its default model, so the name is checked first.
        names = openai.names(await self.request_json("GET", openai.MODELS))
        if model not in names:
            raise ModelMissing(model, names, can_pull=False)

    async def stream_chat(
        self, model: str, messages: Messages, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """The reply as it is generated; the last chunk carries ``done_reason``. ``timeout`` bounds each wait
        for the next piece (the client's timeout when None)."""
        engine = await self.engine()
        if engine == "llamacpp":
            await self._check_served(model)
            path, body = openai.CHAT, openai.chat_body(model, messages, stream=True)
        else:
            path, body = ollama.CHAT, ollama.chat_body(model, messages, stream=True)
        async with self.request("POST", path, body=body, model=model, timeout=timeout) as response:
            async for line in self.lines(response, f"POST {path}", timeout):
                part = self._part(line, engine, model)
                if part is None:
                    return
                if part.content or part.done_reason:
                    yield ChatChunk(content=part.content, done_reason=part.done_reason)

    def _part(self, line: str, engine: Engine, model: str) -> ChatPart | None:
        """One streamed line parsed; None at llama.cpp's ``data: [DONE]``."""
        if engine == "llamacpp":
            data = openai.sse_data(line)
            if data is openai.DONE:
                return None
            if data is None:
                return ChatPart()  # SSE comments and keep-alives
            line = str(data)
        try:
            obj = json.loads(line)
        except ValueError:
            raise EngineDown(self.address, "the chat stream carried something other than JSON") from None
        failure = self._stream_error(obj, model)
        if failure is not None:
            raise failure
        return ollama.chat_part(obj) if engine == "ollama" else openai.chunk_part(obj)

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
        if await self.engine() == "ollama":
            body = ollama.chat_body(model, messages, stream=False)
            obj = await self.request_json("POST", ollama.CHAT, body=body, model=model, timeout=timeout)
            failure = self._stream_error(obj, model)
            if failure is not None:
                raise failure
            part = ollama.chat_part(obj)
            return part.content, as_str(obj.get("done_reason"))
        await self._check_served(model)
        body = openai.chat_body(model, messages, stream=False)
        part = openai.completion_part(
            await self.request_json("POST", openai.CHAT, body=body, model=model, timeout=timeout)
        )
        return part.content, part.done_reason
