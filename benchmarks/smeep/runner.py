"""The run loop: per model evict, preload and run every task trial, journalled one result at a time."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
from claw.engine.errors import CrushError, ModelUnavailable

from smeep.checks import Outcome
from smeep.drivers import DriverTimeout
from smeep.engines import Engine
from smeep.journal import Journal
from smeep.tasks import Task
from smeep.toolbox import Bench, open_bench, own_like_root
from smeep.website import FixtureSite

STATUSES = ("PASS", "FAIL", "ERR", "TIMEOUT", "SKIP", "LOAD_FAIL")


class Driver(Protocol):
    name: str
    seeded: bool  # whether the driver passes a seed to the model
    temperature: float | None  # what it asks for; None = the agent's own setting

    async def run(self, task: Task, bench: Bench, model: str, seed: int | None = None) -> Outcome: ...


@dataclass
class Result:
    """One task trial; the field names follow upstream bench-openclaw.py's runs[model][test]."""

    model: str
    id: str
    trial: int
    status: str
    ms: int | None = None
    reply: str = ""
    tools: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    seed: int | None = None  # the sampling seed of this trial (null where the driver cannot set one)
    temperature: float | None = None
    tool_names: list[str] | None = None  # the tools used, by the agent's names (OpenClaw: toolSummary.tools)
    type: str = "result"


class Progress:
    """A plain progress line on stderr: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total, self.count, self.stream = total, 0, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        self.count += 1
        width = 20
        filled = width * self.count // max(self.total, 1)
        elapsed = time.monotonic() - self.started
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} {elapsed:5.0f}s {text}"
        self.stream.write(("\r\x1b[K" + line) if self.tty else line + "\n")
        if self.tty and self.count == self.total:
            self.stream.write("\n")
        self.stream.flush()


@dataclass
class Plan:
    models: list[str]
    tasks: list[Task]
    trials: int = 1
    keep_alive: str = "5m"
    preload: bool = True
    workspace: Path | None = None  # the OpenClaw agent's workspace; None = a fresh one per task
    seed: int = 0  # trial n samples with seed + n - 1: each repeat differs, a rerun repeats it

    def seed_of(self, trial: int) -> int:
        return self.seed + trial - 1


async def run_plan(
    plan: Plan, engine: Engine | None, driver: Driver, journal: Journal, *, progress: Progress | None = None
) -> dict[str, dict[str, Any]]:
    """Run everything not yet in the journal; returns per-model notes (digest, load time, keep-alive)."""
    done = journal.done()
    notes: dict[str, dict[str, Any]] = {}
    with FixtureSite() as site:
        for model in plan.models:
            todo = [(t, n) for t in plan.tasks for n in range(1, plan.trials + 1) if (model, t.id, n) not in done]
            notes[model] = {"keep_alive": plan.keep_alive, "load_s": None, "digest": None, "evicted": []}
            if not todo:
                continue
            load_error = None
            if engine is not None:
                notes[model]["digest"] = await engine.digest(model)
                if plan.preload:
                    try:
                        notes[model]["evicted"] = await engine.evict_all()
                        notes[model]["load_s"] = await engine.preload(model, plan.keep_alive)
                    except (CrushError, OSError) as err:
                        load_error = str(err)
            for task, trial in todo:
                if load_error is not None:
                    failed = Result(model, task.id, trial, "LOAD_FAIL", error=load_error)
                    result = _stamped(failed, driver, plan.seed_of(trial))
                else:
                    result = await run_one(task, trial, model, driver, site, plan.workspace, plan.seed_of(trial))
                journal.append(asdict(result))
                if progress:
                    progress.step(f"{model} {task.id}#{trial} {result.status}")
    return notes


async def run_one(
    task: Task,
    trial: int,
    model: str,
    driver: Driver,
    site: FixtureSite,
    workspace: Path | None,
    seed: int | None = None,
) -> Result:
    return _stamped(await _attempt(task, trial, model, driver, site, workspace, seed), driver, seed)


def _stamped(result: Result, driver: Driver, seed: int | None) -> Result:
    """The sampling the trial asked for, as far as the driver can ask for it."""
    result.seed = seed if getattr(driver, "seeded", False) else None
    result.temperature = getattr(driver, "temperature", None)
    return result


async def _attempt(
    task: Task, trial: int, model: str, driver: Driver, site: FixtureSite, workspace: Path | None, seed: int | None
) -> Result:
    appliance = getattr(driver, "appliance", None)  # the agent's own tools, their effects on the appliance
    started = time.perf_counter()
    try:
        async with open_bench(task.sources, site.url, workspace, appliance) as bench:
            if task.setup:
                await task.setup(bench)
                if appliance is not None:
                    own_like_root(bench.workspace)
            first = len(site.requests)
            outcome: Outcome | None = None
            with anyio.fail_after(task.timeout):
                outcome = await driver.run(task, bench, model, seed)
            ms = int((time.perf_counter() - started) * 1000)
            ms = getattr(driver, "last_ms", None) or ms
            bench.site_requests = [path.split("?")[0] for path in site.requests[first:]]
            verdict = await task.check(bench, outcome)
            tools = outcome.tool_count if outcome.tool_count is not None else (len(bench.log) or None)
            named = outcome.agent_tools if outcome.agent_tools is not None else dict.fromkeys(r.name for r in bench.log)
            return Result(
                model, task.id, trial, "PASS" if verdict.passed else "FAIL", ms, outcome.reply[:300],
                tools if task.mode == "agent" else None, outcome.input_tokens, outcome.output_tokens,
                None if verdict.passed else verdict.reason,
                tool_names=list(named) if task.mode == "agent" else None,
            )  # fmt: skip
    except Exception as raised:  # one broken task must not end the run
        err = _leaf(raised)
        if isinstance(err, (TimeoutError, DriverTimeout)):
            status, text = "TIMEOUT", str(err) or f"over {task.timeout:g} s"
        elif isinstance(err, ModelUnavailable):
            status, text = "LOAD_FAIL", str(err)
        else:
            status, text = "ERR", f"{type(err).__name__}: {err}"[:500]
        return Result(model, task.id, trial, status, _ms(started), error=text)


def _leaf(err: BaseException) -> BaseException:
    """The MCP client's task groups wrap what the driver raised; the first leaf is the cause."""
    while getattr(err, "exceptions", None):  # BaseExceptionGroup (3.11+, or the backport on 3.10)
        err = err.exceptions[0]  # type: ignore[attr-defined]
    return err


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def summarise_statuses(statuses: Sequence[str]) -> str:
    """Several trials of one task: PASS on a majority of the eligible trials, else the commonest other status."""
    eligible = [s for s in statuses if s != "SKIP"]
    if not eligible:
        return "SKIP"
    if sum(s == "PASS" for s in eligible) * 2 > len(eligible):
        return "PASS"
    others = [s for s in eligible if s != "PASS"]
    return max(STATUSES, key=others.count)
