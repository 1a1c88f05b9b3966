"""Every task's checker against a scripted pass and a scripted fail, in both wire formats, end to end."""

from __future__ import annotations

import pytest
from smeep.drivers import DirectDriver
from smeep.engines import make_engine
from smeep.runner import run_one
from smeep.tasks import LADDER, SUITE, TASKS
from smeep.website import FixtureSite

from tests.smeep.scripts import PASS, failing

pytestmark = pytest.mark.anyio


def test_registry_sizes_and_unique_ids():
    assert len(LADDER) == 10 and len(SUITE) == 30 and len(TASKS) == 40
    assert {t.tier for t in LADDER} == {1, 2, 3, 4}
    assert {t.category for t in SUITE} == {"exec", "web", "scheduling", "leds", "files", "system", "chains"}


@pytest.fixture(scope="module")
def site():
    with FixtureSite() as served:
        yield served


@pytest.mark.parametrize("api", ["ollama", "openai"])
@pytest.mark.parametrize("task_id", sorted(TASKS))
async def test_checker_passes_the_work_and_fails_the_claim(fake, site, task_id, api):
    assert task_id in PASS, f"task {task_id} has no scripted pass/fail: add it to tests/smeep/scripts.py"
    task = TASKS[task_id]
    fake.scripts[f"pass-{task_id}"] = PASS[task_id]
    fake.scripts[f"fail-{task_id}"] = failing(task_id)
    engine = make_engine(fake.url + ("/v1" if api == "openai" else ""), api, timeout=10)
    try:
        driver = DirectDriver(engine)
        passed = await run_one(task, 1, f"pass-{task_id}", driver, site, None)
        assert passed.status == "PASS", passed
        failed = await run_one(task, 1, f"fail-{task_id}", driver, site, None)
        assert failed.status == "FAIL", failed
        assert failed.error
    finally:
        await engine.aclose()
    if task.mode == "agent":
        assert passed.tools == sum(len(s.get("tools", [])) for s in PASS[task_id])
