from __future__ import annotations

import pytest

from tests.smeep.fake_engine import FakeEngine


@pytest.fixture(scope="module")
def fake():
    with FakeEngine() as engine:
        yield engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
