"""Talk to the LED daemon: one connection per request, async for servers, :meth:`LedClient.request_sync` for CLIs.

Two failures are told apart because callers treat them differently: :class:`LedDaemonUnavailable` (nobody
answers on the socket; the message names it) and :class:`LedRequestError` (the daemon refused the request; the
message is the daemon's own one-line reason).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from claw.leds.protocol import DEFAULT_SOCKET, encode

MAX_REPLY_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 5.0


class LedDaemonUnavailable(ConnectionError):
    """No LED daemon answers on the socket."""


class LedRequestError(RuntimeError):
    """The daemon answered ``ok: false``; the message is its reason."""


class LedClient:
    def __init__(self, socket_path: Path | str = DEFAULT_SOCKET, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request (``None`` fields are left out, so the daemon's defaults apply) and return the answer."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path, limit=MAX_REPLY_BYTES), self.timeout
            )
        except (OSError, asyncio.TimeoutError) as err:
            raise self._unavailable(err) from None
        try:
            writer.write(_line(op, fields))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readline(), self.timeout)
        except (OSError, ValueError, asyncio.TimeoutError) as err:
            raise self._unavailable(err) from None
        finally:
            writer.close()
        return self._decode(reply)

    def request_sync(self, op: str, **fields: Any) -> dict[str, Any]:
        """The same request over a blocking socket, for callers without an event loop (the CLI, hooks)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.socket_path))
                sock.sendall(_line(op, fields))
                with sock.makefile("rb") as stream:
                    reply = stream.readline(MAX_REPLY_BYTES)
            except OSError as err:
                raise self._unavailable(err) from None
        return self._decode(reply)

    async def get(self) -> dict[str, Any]:
        return await self.request("get")

    async def set_color(
        self, color: str, *, first: int | None = None, last: int | None = None, brightness: float | None = None
    ) -> dict[str, Any]:
        return await self.request("set", color=color, first=first, last=last, brightness=brightness)

    async def progress(self, percent: float, *, color: str | None = None) -> dict[str, Any]:
        return await self.request("progress", percent=percent, color=color)

    async def pulse(self, kind: str, *, seconds: float | None = None) -> dict[str, Any]:
        return await self.request("pulse", kind=kind, seconds=seconds)

    async def flash(self, *, color: str | None = None, seconds: float | None = None) -> dict[str, Any]:
        return await self.request("flash", color=color, seconds=seconds)

    async def pattern(self, name: str, *, color: str | None = None, ttl: float | None = None) -> dict[str, Any]:
        return await self.request("pattern", name=name, color=color, ttl=ttl)

    async def clear(self) -> dict[str, Any]:
        return await self.request("clear")

    async def signal(
        self, source: str, state: str, *, ttl: float | None = None, detail: str | None = None
    ) -> dict[str, Any]:
        return await self.request("signal", source=source, state=state, ttl=ttl, detail=detail)

    async def unsignal(self, source: str) -> dict[str, Any]:
        return await self.request("unsignal", source=source)

    def _unavailable(self, err: BaseException) -> LedDaemonUnavailable:
        if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
            reason = f"no answer within {self.timeout:g} s"
        elif isinstance(err, PermissionError):
            reason = "permission denied (is this user in the socket's group?)"
        else:
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return LedDaemonUnavailable(f"LED daemon unavailable at {self.socket_path}: {reason}")

    def _decode(self, reply: bytes) -> dict[str, Any]:
        if not reply:
            raise LedDaemonUnavailable(f"LED daemon at {self.socket_path} closed the connection without an answer")
        try:
            answer = json.loads(reply)
        except ValueError:
            raise LedRequestError(f"LED daemon at {self.socket_path} sent an answer that is not JSON") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise LedRequestError(f"LED daemon at {self.socket_path} sent an answer without 'ok'")
        if not answer["ok"]:
            raise LedRequestError(str(answer.get("error", "refused without a reason")))
        return answer


def _line(op: str, fields: dict[str, Any]) -> bytes:
    return encode({"op": op, **{key: value for key, value in fields.items() if value is not None}})
