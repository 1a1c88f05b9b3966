"""``python -m claw.threadweaver`` started as a process of its own, as its unit starts it, for tests that need the
real server (uvicorn) on a loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

APPS = Path(__file__).resolve().parents[2] / "apps"


def start(config: Path, url: str, key: str, **popen: Any) -> subprocess.Popen:
    """ThreadWeaver with ``config`` and the store key ``key``, once ``url``/healthz answers (``popen``: where its
    output goes). If it exits first or is not up in 20 s, the assertion says what it wrote and it is killed."""
    env = {**os.environ, "PYTHONPATH": str(APPS), "THREADWEAVER_STORE_KEY": key}
    command = [sys.executable, "-m", "claw.threadweaver", "--config", str(config)]
    server = subprocess.Popen(command, env=env, **popen)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, _output(server)
            assert time.monotonic() < deadline, "ThreadWeaver did not start"
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                return server
            except httpx.TransportError:
                time.sleep(0.05)
    except BaseException:
        server.kill()
        server.wait(10)
        raise


@contextlib.contextmanager
def running(config: Path, url: str, key: str) -> Iterator[subprocess.Popen]:
    """:func:`start` with its output captured as text, killed with SIGKILL on the way out if it still runs."""
    server = start(config, url, key, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
            server.wait(10)


def _output(server: subprocess.Popen) -> str:
    pipe = server.stdout or server.stderr
    if pipe is None:
        return "the server exited"
    out = pipe.read()
    return out.decode() if isinstance(out, bytes) else out
