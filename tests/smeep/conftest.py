from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_engine import FakeEngine


@pytest.fixture(scope="module")
def fake():
    with FakeEngine() as engine:
        yield engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
