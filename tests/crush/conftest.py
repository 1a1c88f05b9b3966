"""Fixtures for the crush tests; the fake engines (``ollama``, ``llamacpp``), ``jetson_root`` and
``closed_port_url`` are the root conftest's."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
