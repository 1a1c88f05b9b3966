"""Fixtures for the ThreadWeaver tests: the anyio backend and adapters wired to in-process fake providers."""

from __future__ import annotations

import pytest
from claw.threadweaver import providers


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def adapter(fake, name: str | None = None, **options):
    """An adapter of the fake's kind whose requests go to the fake."""
    kind = fake.kind
    base = {"crush": "http://crush.test:11434", "anthropic": "https://api.anthropic.test"}.get(
        kind, f"https://{kind}.test/v1"
    )
    options.setdefault("api_key", "sk-test")
    return providers.build(name or kind, kind, base, transport=fake.transport(), **options)
