"""The swarm tests run on asyncio (the supervisor's loop); helpers live in tests/swarm/harness.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
