"""The routes' dependencies: the app's parts, from ``app.state`` (set once by :func:`..app.create_app`), and the
console session every route but ``/healthz``, ``/login`` and the UI needs.

Each is an ``Annotated`` type, so a route names what it uses: ``def threads(store: Store) -> ...``. The getters
are ``async``: they only read ``app.state``, and FastAPI runs a plain ``def`` dependency in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import State

from claw.threadweaver.auth import COOKIE, Sessions
from claw.threadweaver.console import Console
from claw.threadweaver.gateway import Gateway
from claw.threadweaver.governance import Governance
from claw.threadweaver.ledger import Ledger
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.router import Router
from claw.threadweaver.status_panel import StatusPanel
from claw.threadweaver.store import ThreadStore
from claw.threadweaver.tools import ToolCatalogue


def install(
    state: State,
    console: Console,
    sessions: Sessions,
    status: StatusPanel | None,
    gateway: Gateway,
) -> None:
    """Put the app's parts where the getters below find them."""
    state.console = console
    state.store = console.store
    state.governance = console.governance
    state.ledger = console.governance.ledger
    state.router = console.router
    state.metrics = console.metrics
    state.tools = console.tools
    state.sessions = sessions
    state.status = status
    state.gateway = gateway


def _part(name: str) -> Callable[[Request], Awaitable[Any]]:
    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


ConsoleDep = Annotated[Console, Depends(_part("console"))]
Store = Annotated[ThreadStore, Depends(_part("store"))]
GovernanceDep = Annotated[Governance, Depends(_part("governance"))]
LedgerDep = Annotated[Ledger, Depends(_part("ledger"))]
RouterDep = Annotated[Router, Depends(_part("router"))]
MetricsDep = Annotated[Metrics, Depends(_part("metrics"))]
Tools = Annotated[ToolCatalogue, Depends(_part("tools"))]
SessionsDep = Annotated[Sessions, Depends(_part("sessions"))]
Status = Annotated[StatusPanel | None, Depends(_part("status"))]
GatewayDep = Annotated[Gateway, Depends(_part("gateway"))]


async def authenticated(request: Request, sessions: SessionsDep) -> str:
    """The session's token, from ``Authorization: Bearer`` or the session cookie; 401 without a valid one."""
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.cookies.get(COOKIE)
    if not sessions.valid(token):
        raise HTTPException(401, "log in first: POST /login with the console password", {"WWW-Authenticate": "Bearer"})
    return token or ""


Session = Annotated[str, Depends(authenticated)]
LOGGED_IN = [Depends(authenticated)]  # a router's dependencies: every route of it needs a session
