"""``claw mcp serve`` for the external-client tests: started from a configuration file, ready once every given
loopback port answers, stopped afterwards (as systemd runs it on the appliance)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx

CLAW = [sys.executable, "-c", "import sys; from claw.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_service(config: Path, ports: Iterable[int], timeout: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([*CLAW, "mcp", "serve", "--config", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, "claw mcp serve exited"
                    assert time.monotonic() < deadline, f"claw mcp serve did not listen within {timeout:g} s"
                    time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(10)
