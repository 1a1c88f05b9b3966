"""Adversarial replies, one task of each kind: after the right tool calls (so the effect is there), a reply that
states a wrong value next to the right one must FAIL. The values are read from this host and the task's files."""

from __future__ import annotations

import os
import re

import pytest
from smeep import claims
from smeep.drivers import DirectDriver
from smeep.engines import make_engine
from smeep.runner import run_one
from smeep.tasks import TASKS
from smeep.website import FixtureSite

from tests.doubles.engine import say
from tests.smeep.scripts import CORES, DISK_GIB, MEM_GIB, PASS, interfaces

pytestmark = pytest.mark.anyio
RELEASE = os.uname().release
OTHER_RELEASE = re.sub(r"^\d+", lambda m: str(int(m.group()) + 1), RELEASE)
WRONG_CORES = (CORES or 1) * 32

ADVERSARIAL = {
    "t1-math": "22,1",
    "t1-json": '{"status": "ok", "count": 42} {"status": "ok", "count": 41}',
    "t2-list": "The workspace has 12 items (ls printed 5 names).",
    "t2-read": "The name is Pinchy-7Q, or rather Pinchy-8R.",
    "t3-write-read": "It says verify-abc-124 (I wrote verify-abc-123).",
    "t4-edit": "The file contains version-3, after version-2.",
    "exec-count-lines": "Not 13: notes.txt has 26 lines.",
    "exec-kernel": f"It runs {OTHER_RELEASE} (uname printed {RELEASE}).",
    "exec-grep": "The quantity is 90 (37 is another row).",
    "exec-sort": "Zolt comes first, then Abernathy.",
    "web-price": "It costs EUR 74.30; 47.30 was last year.",
    "web-json": "Build 8813 (the one before was 8812).",
    "web-follow": "The secret word is banana-12, not marmalade-44.",
    "sched-weekday": "It is a Thursday, not a Friday.",
    "files-read": "The password is tangerine-8814 (router.txt says tangerine-8841).",
    "sys-cores": f"This machine has {WRONG_CORES} cores; the tool answered {CORES} times.",
    "sys-memory": f"{MEM_GIB:.1f} GiB in total, and {MEM_GIB * 9:.0f} GiB available.",
    "sys-disk": f"The root filesystem is {DISK_GIB:.0f} GiB, on a {DISK_GIB * 37:.0f} GiB disk.",
    "sys-network": lambda: f"Interfaces: {interfaces()}, wlan7",
    "leds-all-blue": "All LEDs are red and blue.",
    "leds-progress": "Showing 75% progress (you asked for 50%).",
    "chain-exec-file": "Wrote 13 to count.txt; notes.txt has 14 lines.",
    "chain-sys-file": f"Wrote {CORES}; this machine has {WRONG_CORES} cores.",
    "chain-web-file": "Saved build 8813.",
    "chain-file-leds": "All LEDs are now green.",
}


@pytest.fixture(scope="module")
def site():
    with FixtureSite() as served:
        yield served


@pytest.mark.parametrize("task_id", sorted(ADVERSARIAL))
async def test_a_wrong_value_beside_the_right_one_fails(fake, site, task_id):
    steps = [*PASS[task_id][:-1], say(ADVERSARIAL[task_id])]  # the work is done; only the words are wrong
    fake.scripts[f"liar-{task_id}"] = steps
    engine = make_engine(fake.url, "ollama", timeout=10)
    try:
        result = await run_one(TASKS[task_id], 1, f"liar-{task_id}", DirectDriver(engine), site, None)
    finally:
        await engine.aclose()
    assert result.status == "FAIL", result
    assert result.error


def test_numbers_skip_identifiers_versions_dates_and_ranges():
    text = "widget-x9 costs 37, build 6.8.0-1 on 2030-05-04 at 09:30, pixels 0-3, marmalade-44, 2,21 and 1,024"
    assert claims.values(text) == [37, 1024]


def test_bound_numbers_before_and_after_their_unit():
    text = "It has 64 CPU cores, a 2-core slice, cores: 8; the core count is 4 and 16 GB of RAM; 3 times"
    assert claims.bound(text, ("cores?",)) == [64, 2, 8, 4]
    lines = "notes.txt has 13 lines; line 1 is first, line count: 13"
    assert claims.bound(lines, ("lines?",), ordinal=True) == [13, 13]
    assert claims.bound("Build 8812, not build 8813", ("builds?",)) == [8812, 8813]
    assert claims.byte_quantities("16GB, 2048 MiB and 1.5 TiB") == [16, 2, 1536]
