"""Ask the inference engine on crush what it runs: Ollama's native API or a llama.cpp (OpenAI-compatible) server.

Neither engine serves Prometheus metrics itself (Ollama has no ``/metrics``), so the exporter reads:

* Ollama: ``GET /api/version`` (``{"version": "..."}``) and ``GET /api/ps`` (``{"models": [{"name", "size",
  "size_vram", "context_length", ...}]}``; ``context_length`` only on newer releases).
* llama.cpp ``llama-server``: ``GET /health`` (200 ``{"status": "ok"}``, 503 while the model loads, 404 on
  servers without it) and ``GET /v1/models`` (``{"object": "list", "data": [{"id": ...}]}``).
  llama-cpp-python's server answers ``/v1/models`` only between generations (one lock guards the model), so a
  timeout there after ``/health`` answered means *busy*, not down. Neither endpoint says a model's context size:
  :class:`LlamaCppConfig` reads each model's ``n_ctx`` from the server's own configuration file (the llamacpp
  role renders ``/etc/llamacpp/config.json``: ``{"models": [{"model", "model_alias", "n_ctx"}, ...]}``).

A failed request never raises: the result says ``up=False`` and keeps the reason in ``error`` for a log line.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from claw.engine.errors import EngineError
from claw.engine.records import LoadedModel, as_int
from claw.engine.sync import SyncEngine, describe

ENGINES = ("ollama", "llamacpp")
DEFAULT_TIMEOUT_S = 1.0
# llama-cpp-python's ModelSettings.n_ctx default, for a config entry without one.
LLAMACPP_DEFAULT_N_CTX = 2048

log = logging.getLogger(__name__)
# Asks llama.cpp's /v1/models while the scrape's own thread asks /health (Prometheus scrapes one at a time).
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine-read")


@dataclass(frozen=True)
class EngineStatus:
    """One reading of the engine: whether it answered, its version and loaded models, and why it failed."""

    engine: str
    up: bool
    version: str | None = None
    models: tuple[LoadedModel, ...] = field(default_factory=tuple)
    error: str | None = None
    # Answered, but too busy generating to list its models: ``models`` is unknown, not empty.
    busy: bool = False


def read_ollama(engine: SyncEngine) -> EngineStatus:
    """Version and loaded models of an Ollama server."""
    try:
        version = engine.ollama_version()
    except EngineError as exc:
        return EngineStatus(engine="ollama", up=False, error=exc.detail)
    try:
        models = tuple(engine.ollama_loaded())
    except EngineError as exc:
        return EngineStatus(engine="ollama", up=True, version=version, error=exc.detail)
    return EngineStatus(engine="ollama", up=True, version=version, models=models)


def _llamacpp_health(engine: SyncEngine) -> str | None:
    """None when ``/health`` says ok or does not exist; otherwise the reason the server is not ready."""
    try:
        response = engine.get("/health")
    except EngineError as exc:
        return exc.detail
    if response.status_code in (200, 404):
        return None
    try:
        detail = response.json().get("error", {}).get("message")
    except (ValueError, AttributeError):
        detail = None
    return f"GET /health: HTTP {response.status_code}" + (f" ({detail})" if detail else "")


def read_llamacpp(engine: SyncEngine) -> EngineStatus:
    """Readiness and served models of a llama.cpp server (no version: these endpoints do not carry one).

    Both are asked at once, so a reading takes the slower answer, not the sum; when ``/health`` says the server is
    not ready the models answer is not waited for (closing the client ends that request).
    """
    models_answer = _WORKERS.submit(engine.openai_loaded)
    problem = _llamacpp_health(engine)
    if problem is not None:
        models_answer.cancel()
        return EngineStatus(engine="llamacpp", up=False, error=problem)
    try:
        models = tuple(models_answer.result())
    except EngineError as exc:
        if isinstance(exc.__cause__, httpx.TimeoutException):
            return EngineStatus(engine="llamacpp", up=True, busy=True)
        return EngineStatus(engine="llamacpp", up=False, error=exc.detail)
    return EngineStatus(engine="llamacpp", up=True, models=models)


def parse_llamacpp_config(payload: Any) -> dict[str, int]:
    """Model id (``model_alias``, else the ``model`` path, as ``/v1/models`` names it) -> ``n_ctx``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("models"), list):
        raise EngineError("no 'models' list in the llama.cpp server configuration")
    contexts: dict[str, int] = {}
    for entry in payload["models"]:
        if not isinstance(entry, dict):
            continue
        name = entry.get("model_alias") or entry.get("model")
        n_ctx = entry.get("n_ctx", LLAMACPP_DEFAULT_N_CTX)
        if isinstance(name, str) and name and as_int(n_ctx):
            contexts[name] = n_ctx
    return contexts


class LlamaCppConfig:
    """The context sizes in a llama-cpp-python server's config file, re-read only when the file changes.

    A missing or unreadable file gives no context sizes (logged once per problem), never an error of the scrape.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._contexts: dict[str, int] = {}
        self._problem: str | None = None

    def contexts(self) -> dict[str, int]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._contexts = parse_llamacpp_config(json.loads(self.path.read_bytes()))
                self._stamp = stamp
        except (OSError, ValueError, EngineError) as exc:
            self._stamp, self._contexts = None, {}
            self._note(f"{self.path}: {exc.detail if isinstance(exc, EngineError) else describe(exc)}")
            return {}
        self._note(None)
        return self._contexts

    def _note(self, problem: str | None) -> None:
        if problem != self._problem and problem is not None:
            log.warning("no context sizes for the llama.cpp models: %s", problem)
        self._problem = problem

    def apply(self, models: tuple[LoadedModel, ...]) -> tuple[LoadedModel, ...]:
        """``models`` with the context length the config gives them (others unchanged)."""
        contexts = self.contexts()
        return tuple(
            replace(model, context_length=contexts[model.name]) if model.name in contexts else model for model in models
        )


def read_engine(engine: str, base_url: str, timeout: float = DEFAULT_TIMEOUT_S) -> EngineStatus:
    """Read ``engine`` (``ollama`` or ``llamacpp``) at ``base_url``; never raises for a down engine."""
    readers = {"ollama": read_ollama, "llamacpp": read_llamacpp}
    if engine not in readers:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    with SyncEngine(base_url, timeout) as client:
        return readers[engine](client)
