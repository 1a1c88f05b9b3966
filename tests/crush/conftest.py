"""Fixtures for the crush tests: fake Ollama and llama.cpp servers on real sockets, the simulated Jetson tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doubles.engine import FakeLlamaCpp, FakeOllama
from tests.doubles.http import closed_port_url, serve

JETSON_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "jetson_sysfs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with serve(FakeOllama()) as fake:
        yield fake


@pytest.fixture
def llamacpp() -> Iterator[FakeLlamaCpp]:
    with serve(FakeLlamaCpp()) as fake:
        yield fake


@pytest.fixture
def closed_url() -> str:
    return closed_port_url()


@pytest.fixture
def jetson_root() -> Path:
    assert JETSON_ROOT.is_dir()
    return JETSON_ROOT
