"""The LED daemon: the single owner of the strip, serving the protocol of :mod:`claw.leds.protocol`.

One asyncio process listens on a unix socket (mode 0660: the group systemd gives it may use it; no network
port) and runs a render loop that wakes at the frame rate only while the winning layer animates, otherwise only
when a request arrives or a layer expires. Backend writes run in a worker thread, because the blinkt library
bit-bangs GPIO and would otherwise stall clients. SIGTERM clears the strip and removes the socket.

Run: ``python -m claw.leds.daemon --backend auto`` or ``claw leds daemon``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import grp
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from claw.leds import backends
from claw.leds.protocol import (
    DEFAULT_SOCKET,
    MAX_LINE_BYTES,
    NAMED_PATTERNS,
    SOCKET_MODE,
    ClearRequest,
    FlashRequest,
    GetRequest,
    LedRequest,
    PatternRequest,
    ProgressRequest,
    ProtocolError,
    PulseRequest,
    SetRequest,
    SignalRequest,
    UnsignalRequest,
    encode,
    error,
    parse_request,
    snapshot,
)
from claw.leds.state import COLORS, NUM_PIXELS, OFF, LedState, Level, Look, pixel

log = logging.getLogger("claw.leds.daemon")

DEFAULT_FPS = 25.0
DEFAULT_MAX_CLIENTS = 16
DEFAULT_IDLE_TIMEOUT_S = 60.0
PULSE_BRIGHTNESS = 0.4


class DaemonError(RuntimeError):
    """The daemon cannot start; the message says why (socket in use, unknown group, ...)."""


class LedService:
    """Turns validated requests into layers; answers one request line with one response, never raising."""

    def __init__(self, state: LedState, backend_name: str) -> None:
        self.state = state
        self.backend_name = backend_name
        self._ops: dict[type[LedRequest], Callable[[Any], dict[str, Any]]] = {
            GetRequest: lambda _: {},
            SetRequest: self._set,
            ProgressRequest: self._progress,
            PulseRequest: self._pulse,
            FlashRequest: self._flash,
            PatternRequest: self._pattern,
            ClearRequest: lambda _: {"removed": self.state.clear_requests()},
            SignalRequest: self._signal,
            UnsignalRequest: lambda r: {"removed": self.state.unsignal(r.source)},
        }

    def handle_line(self, line: bytes) -> dict[str, Any]:
        try:
            request = parse_request(line)
            extra = self._ops[type(request)](request)
        except (ProtocolError, ValueError) as err:
            return error(str(err))
        return {"ok": True, **extra, **snapshot(self.state, self.backend_name)}

    def _set(self, r: SetRequest) -> dict[str, Any]:
        frame = list(self.state.manual_pixels())
        frame[r.first : r.last + 1] = [pixel(r.color, r.brightness)] * (r.last - r.first + 1)
        look = Look("solid", r.color, r.brightness, pixels=tuple(frame))
        self.state.put("manual", Level.MANUAL, look, ttl=r.ttl, state="color")
        return {}

    def _progress(self, r: ProgressRequest) -> dict[str, Any]:
        lit = math.floor(r.percent * NUM_PIXELS / 100 + 1e-9)
        frame = (pixel(r.color, r.brightness),) * lit + (OFF,) * (NUM_PIXELS - lit)
        look = Look("solid", r.color, r.brightness, pixels=frame)
        self.state.put("manual", Level.MANUAL, look, ttl=r.ttl, state="progress", detail=f"{r.percent:g}%")
        return {"lit": lit}

    def _pulse(self, r: PulseRequest) -> dict[str, Any]:
        color = COLORS["green"] if r.kind == "success" else COLORS["red"]
        look = Look("pulse", color, PULSE_BRIGHTNESS, period=r.seconds / 2)  # two swells
        self.state.put("pulse", Level.PULSE, look, ttl=r.seconds, state=r.kind, restart=True)
        return {}

    def _flash(self, r: FlashRequest) -> dict[str, Any]:
        look = Look("blink", r.color, r.brightness, period=1.0 / r.hz)
        self.state.put("flash", Level.ALERT, look, ttl=r.seconds, state="flash", restart=True)
        return {}

    def _pattern(self, r: PatternRequest) -> dict[str, Any]:
        look = Look(r.name, r.color or NAMED_PATTERNS[r.name], r.brightness)
        self.state.put("manual", Level.MANUAL, look, ttl=r.ttl, state=r.name)
        return {}

    def _signal(self, r: SignalRequest) -> dict[str, Any]:
        self.state.signal(r.source, r.state, ttl=r.ttl, detail=r.detail)
        return {}


class LedDaemon:
    """The socket server and the render loop around one :class:`LedService` and one backend."""

    def __init__(
        self,
        service: LedService,
        backend: backends.Backend,
        socket_path: Path = DEFAULT_SOCKET,
        *,
        fps: float = DEFAULT_FPS,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        group: str | None = None,
    ) -> None:
        self.service = service
        self.backend = backend
        self.socket_path = socket_path
        self.frames_shown = 0
        self._frame_interval = 1.0 / fps
        self._max_clients = max_clients
        self._idle_timeout = idle_timeout
        self._group = group
        self._server: asyncio.AbstractServer | None = None
        self._render_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LedDaemon:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        _claim_socket_path(self.socket_path)
        self._server = await asyncio.start_unix_server(self._serve_client, path=self.socket_path, limit=MAX_LINE_BYTES)
        # The runtime directory (0750 under systemd) guards the moment between bind and chmod.
        self.socket_path.chmod(SOCKET_MODE)
        if self._group:
            try:
                os.chown(self.socket_path, -1, grp.getgrnam(self._group).gr_gid)
            except (KeyError, PermissionError) as err:
                await self.stop()
                raise DaemonError(f"cannot give {self.socket_path} to group {self._group!r}: {err}") from None
        self._render_task = asyncio.create_task(self._render_loop())
        log.info("serving %s with the %s backend", self.socket_path, self.backend.name)

    async def stop(self) -> None:
        """Stop serving, wait for the frame in flight, turn the strip off and remove the socket."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._render_task is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._render_task), 2.0)
            self._render_task.cancel()
        try:
            self.backend.close()
        except Exception:
            log.exception("could not clear the strip")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def serve_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with self:
            await stop.wait()
            log.info("stopping")

    async def _render_loop(self) -> None:
        shown = None
        last_error = ""
        while not self._stopping:
            self._wake.clear()
            frame = self.service.state.frame()
            if frame != shown:
                try:
                    await asyncio.to_thread(self.backend.show, frame)
                    shown, last_error = frame, ""
                    self.frames_shown += 1
                except Exception as err:  # logged once per distinct error, not 25 times a second
                    if str(err) != last_error:
                        log.warning("backend %s could not show a frame: %s", self.backend.name, err)
                    last_error = str(err)
            delay = self.service.state.next_change(self._frame_interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            await _close(writer)
            return
        if len(self._writers) >= self._max_clients:
            writer.write(encode(error(f"too many clients (limit {self._max_clients}); try again shortly")))
            await _close(writer)
            return
        self._writers.add(writer)
        try:
            while not self._stopping:
                try:
                    line = await asyncio.wait_for(reader.readline(), self._idle_timeout)
                except asyncio.TimeoutError:
                    break
                except ValueError:  # the line overran the reader's limit; the rest of the stream is unframed
                    writer.write(encode(error(f"request line longer than {MAX_LINE_BYTES} bytes")))
                    break
                if not line:
                    break
                writer.write(encode(self._answer(line)))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            await _close(writer)

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            response = self.service.handle_line(line)
        except Exception as err:  # a bug must cost one request, never the daemon
            log.exception("request failed")
            response = error(f"internal error: {type(err).__name__}: {err}")
        self._wake.set()
        return response


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


def _claim_socket_path(path: Path) -> None:
    """Remove a stale socket left by a crash, but never steal one a live daemon still answers on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise DaemonError(f"{path} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise DaemonError(f"another LED daemon is already listening on {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help=f"unix socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--backend", choices=backends.BACKENDS, default="auto", help="LED backend (default auto)")
    parser.add_argument("--state-file", type=Path, help="simulated backend: mirror each frame into this JSON file")
    parser.add_argument("--group", help="give the socket to this group (systemd usually sets it already)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"animation frame rate (default {DEFAULT_FPS})")
    parser.add_argument("--max-clients", type=int, default=DEFAULT_MAX_CLIENTS, help="concurrent connections")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if not 1 <= args.fps <= 60 or args.max_clients < 1:
        print("claw leds daemon: --fps must be 1..60 and --max-clients at least 1", file=sys.stderr)
        return 2
    try:
        backend = backends.open_backend(args.backend, args.state_file)
    except backends.BackendError as err:
        print(f"claw leds daemon: {err}", file=sys.stderr)
        return 2
    daemon = LedDaemon(
        LedService(LedState(), backend.name),
        backend,
        args.socket,
        fps=args.fps,
        max_clients=args.max_clients,
        group=args.group,
    )
    try:
        asyncio.run(daemon.serve_until_signalled())
    except (DaemonError, OSError) as err:
        backend.close()
        print(f"claw leds daemon: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claw.leds.daemon", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
