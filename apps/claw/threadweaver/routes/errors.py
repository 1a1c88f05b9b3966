"""Errors as JSON ``{"error": {"code", "message", ...}}`` with their HTTP status (see :mod:`..app`); the gateway's
in OpenAI's shape instead (:func:`..gateway.error_response`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from claw.threadweaver.approvals import InvalidDecisions, NotPending
from claw.threadweaver.console import NotContinuable
from claw.threadweaver.gateway import GatewayError, error_response
from claw.threadweaver.governance import SpendCapReached
from claw.threadweaver.hooks import HookBlocked, HookFailed, HookTimeout
from claw.threadweaver.providers.errors import ProviderError, http_status
from claw.threadweaver.router import UnknownProvider
from claw.threadweaver.store import NotFound

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
}


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def status_of(err: Exception) -> int:
    if isinstance(err, SpendCapReached):
        return 402
    if isinstance(err, HookBlocked):
        return 403
    if isinstance(err, HookTimeout):
        return 504
    if isinstance(err, HookFailed):
        return 500
    if isinstance(err, ProviderError):
        return http_status(err)
    return 502


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = error(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


def _where(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as one name: ``body.max_output_tokens``, ``query.q``, ``body.tools[0]``."""
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where


async def invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors in the documented shape: 400 ``invalid_json`` for a body that is not JSON,
    else 422 ``invalid`` naming the first field at fault (``field``) and listing every problem (``errors``)."""
    assert isinstance(exc, RequestValidationError)
    problems = [{"field": _where(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return error(400, "invalid_json", "the body is not valid JSON")
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return error(422, "invalid", message, field=first["field"], errors=problems)


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return error(404, "not_found", str(exc))


async def unknown_provider(request: Request, exc: Exception) -> JSONResponse:
    return error(422, "unknown_provider", str(exc))


async def capped(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpendCapReached)
    return error(exc.status, exc.code, str(exc), **exc.details())  # 402 a cap, 422 a model without a price


async def coded(request: Request, exc: Exception) -> JSONResponse:
    """An error with its own ``code``: 409 when nothing is pending, 422 for incomplete decisions; a reply that
    cannot be continued: its own ``status`` (422, or 409 when answered already or being written)."""
    status = getattr(exc, "status", None) or (409 if isinstance(exc, NotPending) else 422)
    return error(status, getattr(exc, "code", "error"), str(exc))


async def turn_failed(request: Request, exc: Exception) -> JSONResponse:
    crush_code = getattr(exc, "crush_code", None)  # the crush node's precise cause (claw.engine.errors)
    extra = {"crush_code": crush_code} if crush_code else {}
    return error(status_of(exc), getattr(exc, "code", "error"), str(exc), **extra)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)  # Starlette's: FastAPI's and unknown routes (404, 405)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(UnknownProvider, unknown_provider)
    app.add_exception_handler(SpendCapReached, capped)
    app.add_exception_handler(NotPending, coded)
    app.add_exception_handler(InvalidDecisions, coded)
    app.add_exception_handler(NotContinuable, coded)
    for kind in (HookBlocked, HookFailed, ProviderError):
        app.add_exception_handler(kind, turn_failed)
    app.add_exception_handler(GatewayError, error_response)
