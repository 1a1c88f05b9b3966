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

Layout: one router per resource in :mod:`.routes` (each route takes the parts it uses as typed dependencies,
:mod:`.routes.deps`), the error handlers in :mod:`.routes.errors`; :func:`create_app` only assembles them. No
route blocks the event loop: store and ledger queries, scrypt and synchronous hooks run in worker threads.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claw.threadweaver.auth import Sessions
from claw.threadweaver.console import Console
from claw.threadweaver.gateway import Gateway
from claw.threadweaver.guards import DEFAULT_MAX_BODY_BYTES, BodyLimit, OriginCheck
from claw.threadweaver.routes import ROUTERS, deps, errors
from claw.threadweaver.status_panel import StatusPanel

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


def create_app(
    console: Console,
    sessions: Sessions,
    status: StatusPanel | None = None,
    gateway: Gateway | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The console's app; ``gateway`` serves OpenAI's API under ``/v1`` (with no clients: every call is 401).

    Before any route: the security headers (outermost, on every answer), the Origin check and the body limit
    (:mod:`.guards`)."""
    app = FastAPI(title="ThreadWeaver", docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(OriginCheck)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    gateway = gateway or Gateway(console.router, console.governance, console.metrics)
    deps.install(app.state, console, sessions, status, gateway)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
