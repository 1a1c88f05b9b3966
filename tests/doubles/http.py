"""What the fake engines share: a real HTTP server in a thread or an in-process httpx transport, failure modes in
front of the app, and a server of fixed answers for tests that pin exact bodies, statuses and delays."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol

import anyio
import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

Mode = Literal["ok", "down", "hung", "wrong_service", "refused"]


@dataclass
class Behaviour:
    """How the fake misbehaves: ``down`` answers 502 like a proxy whose engine died, ``hung`` waits
    ``hang_seconds`` before answering, ``wrong_service`` is some other web server on the port, ``refused`` refuses
    the connection (in process only: on a socket, aim at :func:`closed_port_url` instead)."""

    mode: Mode = "ok"
    hang_seconds: float = 1.0
    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, JSON body or None)

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def bodies(self) -> list[Any]:
        return [body for _method, _path, body in self.requests]


class Gate:
    """ASGI middleware applying a Behaviour before the engine app sees the request."""

    def __init__(self, app: ASGIApp, behaviour: Behaviour) -> None:
        self.app = app
        self.behaviour = behaviour

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = self.behaviour.mode
        if scope["type"] == "http" and mode == "down":
            page = "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
            return await HTMLResponse(page, 502)(scope, receive, send)
        if scope["type"] == "http" and mode == "wrong_service":
            return await HTMLResponse("<html><body><h1>It works!</h1></body></html>")(scope, receive, send)
        if scope["type"] == "http" and mode == "hung":
            await anyio.sleep(self.behaviour.hang_seconds)
        await self.app(scope, receive, send)


def refused(request: httpx.Request) -> NoReturn:
    """What httpx raises for a refused connection: anyio's message, the OS error underneath."""
    raise httpx.ConnectError("All connection attempts failed", request=request) from ConnectionRefusedError(
        111, "Connection refused"
    )


class InProcess(httpx.AsyncBaseTransport):
    """An httpx transport into an app in this process (no socket); the Behaviour's ``refused`` mode refuses."""

    def __init__(self, app: ASGIApp, behaviour: Behaviour) -> None:
        self.asgi = httpx.ASGITransport(app=app)
        self.behaviour = behaviour

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.behaviour.mode == "refused":
            refused(request)
        return await self.asgi.handle_async_request(request)


@contextlib.contextmanager
def running(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a random 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake engine did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Servable(Protocol):
    url: str

    def app(self) -> ASGIApp: ...


@contextlib.contextmanager
def serve(fake: Servable) -> Iterator[Any]:
    """Serve a fake engine on a real socket; yields it with ``url`` set."""
    with running(fake.app()) as url:
        fake.url = url
        yield fake


# path -> (HTTP status, JSON body or raw bytes for a body that is not JSON[, seconds to wait before answering])
Routes = dict[str, tuple]


def fixed_routes(routes: Routes) -> ASGIApp:
    """An app answering GETs from ``routes`` exactly (404 ``{"error": "not found"}`` elsewhere)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        status, body, *delay = routes.get(request.url.path, (404, {"error": "not found"}))
        if delay:
            await anyio.sleep(delay[0])
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        await Response(data, status, media_type="application/json")(scope, receive, send)

    return app
