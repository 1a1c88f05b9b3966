"""Building blocks for pass checks. Every check looks at an effect (a file, a reminder, the LED strip, the fixture
site's request log, a value the harness computes itself), never only at words in the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from smeep import claims
from smeep.toolbox import Bench


@dataclass
class Outcome:
    """What a driver got back from one task."""

    reply: str
    tool_count: int | None = None  # the OpenClaw driver knows how many calls were made (toolSummary.calls)
    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_names: tuple[str, ...] | None = None  # and which tools, by the harness's names (toolSummary.tools)
    tool_failures: int = 0  # and how many of the calls failed (toolSummary.failures)
    agent_tools: tuple[str, ...] | None = None  # the tools as the agent named them (e.g. time__day_of_week)


@dataclass
class Verdict:
    passed: bool
    reason: str = ""


def ok(reason: str = "") -> Verdict:
    return Verdict(True, reason)


def fail(reason: str) -> Verdict:
    return Verdict(False, reason)


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def states_number(
    reply: str,
    truth: float,
    units: tuple[str, ...],
    *,
    also_true: tuple[float, ...] = (),
    tolerance: float = 0.0,
    required: bool = True,
    ordinal: bool = False,
) -> Verdict:
    """The reply states ``truth`` (unless not ``required``), and every number it ties to ``units`` is true
    (``truth`` or ``also_true``)."""
    if required and not claims.close(truth, claims.values(reply), absolute=tolerance):
        return fail(f"the reply does not state {truth:g}")
    tied = claims.bound(reply, units, ordinal=ordinal)
    wrong = [v for v in tied if not claims.close(v, (truth, *also_true), absolute=tolerance)]
    return fail(f"the reply states {wrong[0]:g} where the truth is {truth:g}") if wrong else ok()


def states_token(reply: str, truth: str, *, also_true: tuple[str, ...] = ()) -> Verdict:
    """The reply names ``truth``, and no other token of its shape (another secret word, another kernel release)."""
    if not has_word(reply, truth):
        return fail(f"the reply lacks {truth!r}")
    allowed = {t.lower() for t in (truth, *also_true)}
    wrong = [t for t in claims.shaped_like(reply, truth) if t.lower() not in allowed]
    return fail(f"the reply also states {wrong[0]!r}; the truth is {truth!r}") if wrong else ok()


def tools_used(bench: Bench, outcome: Outcome, *names: str, at_least: int = 1) -> Verdict:
    """Enough successful calls (of these tools, if named). The OpenClaw driver reports its agent's calls: how many,
    how many failed and which tools (toolSummary), not each call's result; a named tool must be among them."""
    if not bench.log and outcome.tool_count is not None:
        count = outcome.tool_count - outcome.tool_failures
        if names and outcome.tool_names is not None and not set(names) & set(outcome.tool_names):
            return fail(f"none of {', '.join(names)} was used (the agent used {', '.join(outcome.tool_names)})")
        return ok() if count >= at_least else fail(f"{count} successful tool calls, needs {at_least}")
    calls = bench.calls(*names)
    if len(calls) >= at_least:
        return ok()
    which = f" of {', '.join(names)}" if names else ""
    return fail(f"{len(calls)} successful tool calls{which}, needs {at_least}")


def file_text(bench: Bench, name: str) -> str | None:
    path = bench.workspace / name
    return path.read_text(errors="replace") if path.is_file() else None


def file_is(bench: Bench, name: str, expected: str) -> Verdict:
    text = file_text(bench, name)
    if text is None:
        return fail(f"{name} was not written")
    return ok() if text.strip() == expected else fail(f"{name} holds {text.strip()[:60]!r}, expected {expected!r}")


def all_of(*verdicts: Verdict) -> Verdict:
    for verdict in verdicts:
        if not verdict.passed:
            return verdict
    return ok()


def write(workspace: Path, name: str, text: str) -> None:
    path = workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
