from __future__ import annotations

import pytest
from smeep.tasks import TASKS

from tests.doubles.engine import FakeOllama
from tests.doubles.http import serve
from tests.smeep.scripts import PASS


@pytest.fixture(scope="module")
def fake():
    # Models: any scripted name; "slow" sleeps, "broken" answers 500, anything else (e.g. "missing") is unknown.
    engine = FakeOllama(version="0.0.0-fake", models={}, loaded={}, slow={"slow": 3.0}, broken={"broken"})
    with serve(engine) as served:
        yield served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def route(prompt: str):
    """The passing script of whichever task the prompt is, so one model ("router") can run many tasks."""
    for task_id, task in TASKS.items():
        if task.prompt.split("{site}")[0] in prompt:
            return PASS[task_id]
    return None


@pytest.fixture
def router(fake):
    fake.router = route
    fake.scripts.setdefault("other", [])
    return fake
