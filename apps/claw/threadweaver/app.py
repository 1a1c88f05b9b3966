"""The console's HTTP API (FastAPI) and its web UI (``/`` and ``/static/``: a dependency-free single page).

Every endpoint but ``/healthz``, ``/login`` and the UI's static files needs a session; the page itself holds no
data and asks for the password when the API answers 401. Every response carries a strict Content-Security-Policy
(no inline script or style: the page needs neither) and the usual anti-sniffing/anti-framing headers.

Errors are JSON ``{"error": {"code", "message", ...}}``: unknown thread or message 404, invalid input (unknown
provider included) 422, a spend cap reached **402 Payment Required** (it is a money limit, not a rate: waiting
does not help, raising the cap does), a hook's block 403, a provider's rate limit 429, a provider rejecting the
request 400, a provider unreachable/down/refusing the key 502, a failing hook 500, approving a message with no
calls waiting 409. A failure of the crush provider adds ``crush_code`` (``engine_down``, ``out_of_memory``, ...).

``/v1`` is the OpenAI-compatible gateway (:mod:`.gateway`): its own bearer keys (per client, not the console
session) and OpenAI's error shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, StrictBool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claw.threadweaver.approvals import InvalidDecisions, NotPending
from claw.threadweaver.auth import COOKIE, Sessions
from claw.threadweaver.console import Console, Turn
from claw.threadweaver.gateway import Gateway
from claw.threadweaver.gateway import install as install_gateway
from claw.threadweaver.governance import SpendCapReached
from claw.threadweaver.hooks import HookBlocked, HookFailed
from claw.threadweaver.providers.errors import ProviderError, http_status
from claw.threadweaver.router import UnknownProvider
from claw.threadweaver.status_panel import StatusPanel
from claw.threadweaver.store import NotFound, StoredMessage, Thread


class Login(BaseModel):
    password: str


class NewThread(BaseModel):
    provider: str
    model: str
    title: str = ""
    fallback_provider: str | None = None
    fallback_model: str | None = None
    system_prompt: str = ""
    max_output_tokens: int | None = Field(None, gt=0)
    cap_usd: float | None = Field(None, ge=0)
    tools: bool | None = Field(None, description="Offer the MCP tools; default: on when any server is configured")


class ThreadChange(BaseModel):
    provider: str | None = None
    model: str | None = None
    fallback_provider: str | None = None
    fallback_model: str | None = None
    max_output_tokens: int | None = Field(None, gt=0)
    cap_usd: float | None = Field(None, ge=0)
    tools: bool | None = None


class NewMessage(BaseModel):
    content: str = Field(min_length=1)
    parent_id: str | None = Field(None, description="Reply under this message (a branch if it has children)")
    root: bool = Field(False, description="With no parent_id: a new first message, not a reply to the newest leaf")


STATIC = Path(__file__).with_name("static")
# The page loads only its own script, style sheet and JSON; inline script/style and framing are refused.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (pure ASGI, so SSE streams pass through unbuffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if scope["path"] == "/" or scope["path"].startswith("/static/"):
                    # Revalidate the UI on every load, so an upgraded appliance never runs a stale script.
                    headers["cache-control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Approval(BaseModel):
    decisions: dict[str, StrictBool] = Field(description="call id -> true (run it) or false (deny it)")


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _status(err: Exception) -> int:
    if isinstance(err, SpendCapReached):
        return 402
    if isinstance(err, HookBlocked):
        return 403
    if isinstance(err, HookFailed):
        return 500
    if isinstance(err, ProviderError):
        return http_status(err)
    return 502


def _client_spend(gateway: Gateway, usage: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each gateway client (configured, or with recorded usage): its cap, spend, tokens and requests."""
    empty = {"cost_usd": 0.0, "tokens_in": 0, "tokens_out": 0, "requests": 0, "providers": {}}
    return {
        name: {
            "cap_usd": gateway.clients[name].cap_usd if name in gateway.clients else None,
            "spent_usd": usage.get(name, empty)["cost_usd"],
            **{key: value for key, value in usage.get(name, empty).items() if key != "cost_usd"},
        }
        for name in sorted(set(gateway.clients) | set(usage))
    }


def _message(message: StoredMessage) -> dict[str, Any]:
    # A shallow copy: the fields are JSON values already, and dataclasses.asdict (which deep-copies every one of
    # them) cost about 50x as much, for every message a turn returns and every search hit.
    return dict(vars(message))


def _turn(turn: Turn) -> dict[str, Any]:
    return {"messages": [_message(m) for m in turn.messages], "approval_required": turn.approval_required}


def _sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def create_app(
    console: Console, sessions: Sessions, status: StatusPanel | None = None, gateway: Gateway | None = None
) -> FastAPI:
    """The console's app; ``gateway`` serves OpenAI's API under ``/v1`` (with no clients: every call is 401)."""
    app = FastAPI(title="ThreadWeaver", docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    store = console.store
    gateway = gateway or Gateway(console)
    install_gateway(app, gateway)

    def authenticated(request: Request) -> str:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.cookies.get(COOKIE)
        if not sessions.valid(token):
            raise HTTPException(
                401, "log in first: POST /login with the console password", {"WWW-Authenticate": "Bearer"}
            )
        return token or ""

    guard = [Depends(authenticated)]

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {401: "unauthenticated", 404: "not_found", 422: "invalid"}
        response = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(UnknownProvider)
    async def unknown_provider(request: Request, exc: UnknownProvider) -> JSONResponse:
        return _error(422, "unknown_provider", str(exc))

    @app.exception_handler(SpendCapReached)
    async def capped(request: Request, exc: SpendCapReached) -> JSONResponse:
        return _error(402, exc.code, str(exc), scope=exc.scope, name=exc.name, spent_usd=exc.spent, cap_usd=exc.cap)

    @app.exception_handler(NotPending)
    async def not_pending(request: Request, exc: NotPending) -> JSONResponse:
        return _error(409, exc.code, str(exc))

    @app.exception_handler(InvalidDecisions)
    async def invalid_decisions(request: Request, exc: InvalidDecisions) -> JSONResponse:
        return _error(422, exc.code, str(exc))

    for kind in (HookBlocked, HookFailed, ProviderError):

        @app.exception_handler(kind)
        async def turn_failed(request: Request, exc: Exception) -> JSONResponse:
            crush_code = getattr(exc, "crush_code", None)  # the crush node's precise cause (claw.crush.errors)
            extra = {"crush_code": crush_code} if crush_code else {}
            return _error(_status(exc), getattr(exc, "code", "error"), str(exc), **extra)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "threads": len(store.threads())}

    @app.post("/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, str]:
        token = sessions.login(body.password)
        if token is None:
            raise HTTPException(401, "wrong password")
        # Secure when the page was served over HTTPS (directly, or by a proxy uvicorn trusts for X-Forwarded-Proto);
        # not on plain-HTTP loopback, where a Secure cookie would never be sent back.
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=int(sessions.ttl_s),
        )
        return {"token": token}

    @app.post("/logout", dependencies=guard)
    async def logout(response: Response, token: str = Depends(authenticated)) -> dict[str, str]:
        sessions.logout(token)
        response.delete_cookie(COOKIE)
        return {"status": "logged out"}

    @app.get("/providers", dependencies=guard)
    async def list_providers() -> list[dict[str, Any]]:
        return console.router.catalog()

    @app.post("/threads", status_code=201, dependencies=guard)
    async def create_thread(body: NewThread) -> Thread:
        console.router.validate(body.provider)
        console.router.validate(body.fallback_provider)
        fields = body.model_dump()
        if fields["tools"] is None:
            fields["tools"] = console.tools_default
        return store.create_thread(**fields)

    @app.get("/threads", dependencies=guard)
    async def list_threads() -> list[Thread]:
        return store.threads()

    @app.patch("/threads/{thread_id}", dependencies=guard)
    async def change_thread(thread_id: str, body: ThreadChange) -> Thread:
        changes = body.model_dump(exclude_unset=True)
        if changes.get("tools", False) is None:
            del changes["tools"]  # the flag is on or off; null changes nothing
        console.router.validate(changes.get("provider"))
        console.router.validate(changes.get("fallback_provider"))
        return store.update_thread(thread_id, **changes)

    @app.get("/threads/{thread_id}", dependencies=guard)
    async def thread_tree(thread_id: str) -> dict[str, Any]:
        thread = store.thread(thread_id)
        return {
            "thread": thread,
            "messages": [_message(m) for m in store.messages(thread_id)],
            "leaves": [leaf.id for leaf in store.leaves(thread_id)],
        }

    @app.get("/threads/{thread_id}/path/{message_id}", dependencies=guard)
    async def path(thread_id: str, message_id: str) -> list[dict[str, Any]]:
        history = store.path(message_id)
        if history[-1].thread_id != thread_id:
            raise NotFound(f"no message {message_id} in thread {thread_id}")
        return [_message(m) for m in history]

    @app.get("/threads/{thread_id}/compare", dependencies=guard)
    async def compare(thread_id: str, a: str, b: str) -> dict[str, Any]:
        store.thread(thread_id)
        diff = store.compare(a, b)
        return {
            "common": [m.id for m in diff.common],
            "only_a": [_message(m) for m in diff.only_a],
            "only_b": [_message(m) for m in diff.only_b],
        }

    @app.post("/threads/{thread_id}/messages", dependencies=guard)
    async def post_message(thread_id: str, body: NewMessage) -> dict[str, Any]:
        turn = await console.post(thread_id, body.content, body.parent_id, root=body.root)
        assert turn.user is not None
        return {"user": _message(turn.user), "reply": _message(turn.reply), **_turn(turn)}

    @app.post("/threads/{thread_id}/messages/stream", dependencies=guard)
    async def stream_message(thread_id: str, body: NewMessage) -> StreamingResponse:
        return _sse(await console.stream(thread_id, body.content, body.parent_id, root=body.root))

    @app.post("/threads/{thread_id}/messages/{message_id}/approval", dependencies=guard)
    async def approve(thread_id: str, message_id: str, body: Approval) -> dict[str, Any]:
        return _turn(await console.approve(thread_id, message_id, body.decisions))

    @app.post("/threads/{thread_id}/messages/{message_id}/approval/stream", dependencies=guard)
    async def approve_stream(thread_id: str, message_id: str, body: Approval) -> StreamingResponse:
        return _sse(await console.approve_stream(thread_id, message_id, body.decisions))

    @app.get("/tools", dependencies=guard)
    async def tools() -> dict[str, Any]:
        listing = await console.tools.listing()
        return {
            "servers": [asdict(server) for server in listing.servers],
            "tools": [tool.public() for tool in listing.tools.values()],
        }

    @app.get("/search", dependencies=guard)
    async def search(q: str, limit: int = 20) -> list[dict[str, str]]:
        return [dict(vars(hit)) for hit in store.search(q, min(max(limit, 1), 100))]

    @app.get("/spend", dependencies=guard)
    async def spend() -> dict[str, Any]:
        summary = store.spend_summary()
        summary["caps"] = {
            name: {"cap_usd": cap, "spent_usd": store.spend(provider=name)}
            for name, cap in console.governance.provider_caps.items()
        }
        summary["clients"] = _client_spend(gateway, store.gateway_usage())
        return summary

    @app.get("/status", dependencies=guard)
    async def appliance_status() -> dict[str, Any]:
        """The cluster at a glance (nodes, models, LEDs, firing alerts, the last hour's key series)."""
        if status is None:
            raise HTTPException(404, "the status panel is not configured (config key: status)")
        return await status.report()

    @app.get("/metrics", dependencies=guard)
    async def metrics() -> Response:
        return Response(generate_latest(console.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
