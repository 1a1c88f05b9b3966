"""Fixtures for the crush tests: fake Ollama and llama.cpp servers on real sockets, the simulated Jetson tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crush.fake_http import closed_port_url, running
from tests.crush.fake_llamacpp import FakeLlamaCpp
from tests.crush.fake_ollama import FakeOllama

JETSON_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "jetson_sysfs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    with running(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
def llamacpp() -> Iterator[FakeLlamaCpp]:
    fake = FakeLlamaCpp()
    with running(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
def closed_url() -> str:
    return closed_port_url()


@pytest.fixture
def jetson_root() -> Path:
    assert JETSON_ROOT.is_dir()
    return JETSON_ROOT
