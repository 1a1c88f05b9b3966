"""Fixtures for the LED tests: a hand-stepped clock and an in-process daemon on a short temporary socket."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from claw.leds.backends import SimulatedBackend
from claw.leds.client import LedClient
from claw.leds.daemon import LedDaemon, LedService
from claw.leds.state import LedState


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: unix socket paths must fit in 107 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="leds-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def daemon(sock_dir: Path, clock: FakeClock) -> AsyncIterator[LedDaemon]:
    """A daemon with the simulated backend mirroring into state.json; its state runs on the fake clock."""
    backend = SimulatedBackend(sock_dir / "state.json")
    async with LedDaemon(LedService(LedState(clock), backend.name), backend, sock_dir / "leds.sock") as running:
        yield running


@pytest.fixture
def client(daemon: LedDaemon) -> LedClient:
    return LedClient(daemon.socket_path, timeout=2.0)
