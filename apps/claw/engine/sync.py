"""A blocking reader of the engine, for callers without an event loop (the crush exporter, once per scrape).

It shares the dialect modules' paths and parsers with the async :class:`claw.engine.client.EngineClient`; only
the transport differs. Failures are :class:`claw.engine.errors.EngineError` whose ``detail`` is a short reason
to log (``GET /api/ps: HTTP 500``) and whose ``__cause__`` is the httpx exception, if any.
"""

from __future__ import annotations

from typing import Any

import httpx

from claw.engine import ollama, openai
from claw.engine.errors import EngineError
from claw.engine.records import LoadedModel
from claw.tls import client_context


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class SyncEngine:
    """One engine at ``base_url`` over one :class:`httpx.Client` (no proxies; the appliance's TLS context)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, trust_env=False, verify=client_context())

    def __enter__(self) -> SyncEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        """The raw answer, whatever its status; transport failures as EngineError."""
        try:
            return self.http.get(path)
        except httpx.HTTPError as exc:
            raise EngineError(f"GET {path}: {describe(exc)}") from exc

    def get_json(self, path: str) -> Any:
        try:
            response = self.http.get(path)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise EngineError(f"GET {path}: HTTP {exc.response.status_code}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(f"GET {path}: {describe(exc)}") from exc

    def ollama_version(self) -> str | None:
        return ollama.version(self.get_json(ollama.VERSION))

    def ollama_loaded(self) -> list[LoadedModel]:
        return ollama.loaded_models(self.get_json(ollama.PS))

    def openai_loaded(self) -> list[LoadedModel]:
        return openai.loaded_models(self.get_json(openai.MODELS))
