"""Fixtures for the ThreadWeaver tests: the anyio backend (the fake providers and ``adapter`` are in fakes/)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
