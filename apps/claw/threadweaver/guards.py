"""What every request passes before a route sees it (pure ASGI, so SSE streams pass unbuffered), and the access
log without query strings.

* :class:`OriginCheck`: a state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) that a browser sent from
  another origin is refused with 403 ``forbidden_origin``: an ``Origin`` header that is not the console's own
  (scheme and ``host:port`` of the request's ``Host``), ``Origin: null``, or, without ``Origin``, a
  ``Sec-Fetch-Site`` of ``cross-site`` or ``same-site``. Requests without either header (``curl``, OpenClaw's
  agents on ``/v1``, any non-browser client) pass: they carry no ambient credentials a page could abuse. Together
  with the session cookie's ``SameSite=Strict`` (a cross-site page's requests do not carry it at all), this is the
  console's CSRF defence.
* :class:`BodyLimit`: a body over ``max_body_bytes`` is refused with 413 ``body_too_large`` before the route runs,
  so nothing of it reaches a provider: at once from ``Content-Length``, or while reading a chunked body (never
  more than the limit is held).

Both answer in the console's error shape (``{"error": {"code", "message"}}``), or in OpenAI's under ``/v1``.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # 2 MiB: about 500,000 tokens of text, more than any model's context
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OPENAI_TYPES = {403: "permission_error", 413: "invalid_request_error", 400: "invalid_request_error"}


async def refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """An error response in the console's shape, or OpenAI's under ``/v1``."""
    if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
        error: dict[str, Any] = {"message": message, "type": _OPENAI_TYPES.get(status, "invalid_request_error")}
        error.update(param=None, code=code)
    else:
        error = {"code": code, "message": message}
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def foreign_origin(scope: Scope) -> str | None:
    """Why a state-changing request comes from another origin (a browser's), or None."""
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is None:
        site = headers.get("sec-fetch-site")
        return f"Sec-Fetch-Site: {site}" if site in ("cross-site", "same-site") else None
    own_host = headers.get("host", "").lower()
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not own_host or parts.netloc.lower() != own_host:
        return f"Origin {origin[:100]!r} is not this console's ({own_host or 'no Host header'})"
    return None


class OriginCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            reason = foreign_origin(scope)
            if reason is not None:
                message = f"refused: {reason}; the console takes changes from its own page only"
                await refuse(scope, send, 403, "forbidden_origin", message)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes (config: max_body_bytes); nothing was sent"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit():
                await refuse(scope, send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(length) > self.max_body_bytes:
                await refuse(scope, send, 413, "body_too_large", self._too_large())
                return
            await self.app(scope, receive, send)  # the server reads no more than Content-Length says
            return
        # No Content-Length (chunked, or no body): read it here, up to the limit, then hand it on.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await refuse(scope, send, 413, "body_too_large", self._too_large())
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class NoQuery(logging.Filter):
    """Drops the query string from uvicorn's access log lines (``GET /search?q=...`` is logged as ``GET /search``):
    a search term, or anything else a query carries, stays out of the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`NoQuery` on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["no_query"] = {"()": NoQuery}
    config["handlers"]["access"]["filters"] = ["no_query"]
    return config
