"""Fixtures for the status tests: a fake Prometheus, a real LED daemon, a last-update record."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from claw.leds.backends import SimulatedBackend
from claw.leds.daemon import LedDaemon, LedService
from claw.leds.state import LedState
from fake_prometheus import FakePrometheus


@pytest.fixture
def prometheus() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
def last_update(tmp_path: Path) -> Path:
    path = tmp_path / "last-update.json"
    record = {"time": "2025-11-20T18:04:11+00:00", "playbook": "playbooks/update.yml", "version": "0.4.0"}
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def led_socket() -> Iterator[Path]:
    """A real LED daemon (simulated backend) on its own event loop in a thread."""
    directory = Path(tempfile.mkdtemp(prefix="leds-", dir="/tmp"))
    backend = SimulatedBackend()
    service = LedService(LedState(), backend.name)
    daemon = LedDaemon(service, backend, directory / "leds.sock")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(daemon.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5), "LED daemon did not start"
    yield daemon.socket_path
    asyncio.run_coroutine_threadsafe(daemon.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    shutil.rmtree(directory, ignore_errors=True)
