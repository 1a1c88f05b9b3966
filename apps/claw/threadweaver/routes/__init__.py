"""The HTTP API, one router per resource; :func:`..app.create_app` includes :data:`ROUTERS` in this order.

Each route takes what it needs as a typed dependency (:mod:`.deps`). A route that queries the store or the
ledger, or checks the password, is a plain ``def`` (FastAPI runs it in a worker thread); the ``async`` ones
await the console, the gateway, the tools or the status panel, which keep their own blocking work off the loop.
"""

from __future__ import annotations

from fastapi import APIRouter

from claw.threadweaver.routes import (
    auth,
    gateway,
    health,
    messages,
    notifications,
    providers,
    search,
    spend,
    status,
    threads,
    tools,
    ui,
)

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (gateway, ui, health, auth, providers, threads, messages, tools, search, spend, status, notifications)
)
