"""Errors as JSON ``{"error": {"code", "message", ...}}`` with their HTTP status (see :mod:`..app`); the gateway's
in OpenAI's shape instead (:func:`..gateway.error_response`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from claw.threadweaver.approvals import InvalidDecisions, NotPending
from claw.threadweaver.gateway import GatewayError, error_response
from claw.threadweaver.governance import SpendCapReached
from claw.threadweaver.hooks import HookBlocked, HookFailed
from claw.threadweaver.providers.errors import ProviderError, http_status
from claw.threadweaver.router import UnknownProvider
from claw.threadweaver.store import NotFound

_CODES = {401: "unauthenticated", 404: "not_found", 422: "invalid"}


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def status_of(err: Exception) -> int:
    if isinstance(err, SpendCapReached):
        return 402
    if isinstance(err, HookBlocked):
        return 403
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


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    return error(404, "not_found", str(exc))


async def unknown_provider(request: Request, exc: Exception) -> JSONResponse:
    return error(422, "unknown_provider", str(exc))


async def capped(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpendCapReached)
    return error(402, exc.code, str(exc), scope=exc.scope, name=exc.name, spent_usd=exc.spent, cap_usd=exc.cap)


async def coded(request: Request, exc: Exception) -> JSONResponse:
    """An error with its own ``code``: 409 when nothing is pending, 422 for incomplete decisions."""
    return error(409 if isinstance(exc, NotPending) else 422, getattr(exc, "code", "error"), str(exc))


async def turn_failed(request: Request, exc: Exception) -> JSONResponse:
    crush_code = getattr(exc, "crush_code", None)  # the crush node's precise cause (claw.engine.errors)
    extra = {"crush_code": crush_code} if crush_code else {}
    return error(status_of(exc), getattr(exc, "code", "error"), str(exc), **extra)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(UnknownProvider, unknown_provider)
    app.add_exception_handler(SpendCapReached, capped)
    app.add_exception_handler(NotPending, coded)
    app.add_exception_handler(InvalidDecisions, coded)
    for kind in (HookBlocked, HookFailed, ProviderError):
        app.add_exception_handler(kind, turn_failed)
    app.add_exception_handler(GatewayError, error_response)
