"""What every HTTP provider adapter shares: one lazily made async client (shared TLS context), the POST that maps
every failure to a :class:`~.errors.ProviderError`, and SSE / NDJSON readers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx

from claw import tls
from claw.threadweaver.providers import errors
from claw.threadweaver.providers.errors import ProviderDown, ProviderError
from claw.threadweaver.providers.model import Chunk, Request, Result

DEFAULT_TIMEOUT_S = 120.0


class HttpProvider:
    """An adapter for one configured provider (``name``) of a ``kind``; subclasses translate bodies."""

    kind: ClassVar[str] = ""
    path: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
        trust_env: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self.max_output_tokens = max_output_tokens
        self._transport = transport
        self._trust_env = trust_env
        self._http: httpx.AsyncClient | None = None

    def output_limit(self, requested: int | None) -> int | None:
        """The reply's token limit: what the request asks, never above this provider's own limit."""
        if self.max_output_tokens is None:
            return requested
        return min(requested, self.max_output_tokens) if requested else self.max_output_tokens

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                transport=self._transport,
                trust_env=self._trust_env,
                verify=tls.client_context(),
                headers=self.headers(),
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- error mapping (overridden by the crush adapters, which reuse claw.engine.errors) -------------------

    def error_from_exception(self, exc: httpx.HTTPError) -> ProviderError:
        return errors.from_exception(self.name, exc, self.base_url, self.timeout)

    def error_from_response(self, status: int, body: bytes, headers: httpx.Headers, model: str | None) -> ProviderError:
        return errors.from_response(self.name, status, body, headers)

    @contextlib.asynccontextmanager
    async def post(self, body: dict[str, Any], model: str | None = None) -> AsyncIterator[httpx.Response]:
        try:
            async with self.http.stream("POST", self.path, json=body) as response:
                if response.is_error:
                    raw = await response.aread()
                    raise self.error_from_response(response.status_code, raw, response.headers, model)
                yield response
        except httpx.HTTPError as exc:
            raise self.error_from_exception(exc) from exc

    async def post_json(self, body: dict[str, Any], model: str | None = None) -> Any:
        async with self.post(body, model) as response:
            raw = await response.aread()
        try:
            return json.loads(raw)
        except ValueError:
            raise ProviderDown(self.name, "it answered something other than JSON") from None

    # -- the adapter API ----------------------------------------------------------------------------------

    def build_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def parse_result(self, data: Any) -> Result:
        raise NotImplementedError

    def parse_stream(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    async def complete(self, request: Request) -> Result:
        return self.parse_result(await self.post_json(self.build_body(request, stream=False), request.model))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        async with self.post(self.build_body(request, stream=True), request.model) as response:
            async for chunk in self.parse_stream(response):
                yield chunk


async def lines(response: httpx.Response) -> AsyncIterator[str]:
    """The body's lines without their ends, as SSE and NDJSON end them: LF, CRLF or CR, and nothing else (httpx's
    ``aiter_lines`` also splits at the other characters ``str.splitlines`` knows, U+2028 among them, which may
    stand raw inside a JSON string). Read from the decoded bytes directly: a stream's every chunk passes one
    layer here instead of ``aiter_text`` and ``aiter_lines`` on top of ``aiter_bytes``."""
    encoding = response.encoding or "utf-8"
    rest = b""
    async for data in response.aiter_bytes():
        parts = (rest + data if rest else data).splitlines(keepends=True)  # bytes: LF, CR and CRLF only
        # The last part waits for more: it has no end yet, or ends in CR, which an LF in the next read may follow.
        rest = parts.pop() if parts and not parts[-1].endswith(b"\n") else b""
        for part in parts:
            yield part.rstrip(b"\r\n").decode(encoding, "replace")
    if rest:
        yield rest.rstrip(b"\r\n").decode(encoding, "replace")


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """``(event, data)`` for each Server-Sent Event (multi-line data joined with newlines)."""
    event: str | None = None
    data: list[str] = []
    async for line in lines(response):
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


async def ndjson(response: httpx.Response) -> AsyncIterator[Any]:
    async for line in lines(response):
        if line.strip():
            yield json.loads(line)
