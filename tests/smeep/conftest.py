from __future__ import annotations

import pytest

from tests.doubles.engine import FakeOllama
from tests.doubles.http import serve


@pytest.fixture(scope="module")
def fake():
    # Models: any scripted name; "slow" sleeps, "broken" answers 500, anything else (e.g. "missing") is unknown.
    engine = FakeOllama(version="0.0.0-fake", models={}, loaded={}, slow={"slow": 3.0}, broken={"broken"})
    with serve(engine) as served:
        yield served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
