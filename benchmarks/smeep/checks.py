"""Building blocks for pass checks. Every check looks at an effect (a file, a reminder, the LED strip, the fixture
site's request log, a value the harness computes itself), never only at words in the reply."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smeep.toolbox import Bench


@dataclass
class Outcome:
    """What a driver got back from one task."""

    reply: str
    tool_count: int | None = None  # the OpenClaw driver only knows how many calls were made
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class Verdict:
    passed: bool
    reason: str = ""


def ok(reason: str = "") -> Verdict:
    return Verdict(True, reason)


def fail(reason: str) -> Verdict:
    return Verdict(False, reason)


def numbers_in(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)]


def has_number(text: str, value: float, tolerance: float = 0.0) -> bool:
    return any(abs(n - value) <= tolerance for n in numbers_in(text))


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def tools_used(bench: Bench, outcome: Outcome, *names: str, at_least: int = 1) -> Verdict:
    """Enough successful calls (of these tools, if named); the OpenClaw driver reports a count only."""
    if not bench.log and outcome.tool_count is not None:
        count = outcome.tool_count
        return ok() if count >= at_least else fail(f"{count} tool calls, needs {at_least}")
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


def first_json_object(text: str) -> Any:
    start = text.find("{")
    depth = 0
    for index in range(max(start, 0), len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if start >= 0 and depth == 0 and text[index] == "}":
            return json.loads(text[start : index + 1])
    raise ValueError("no JSON object in the reply")


def all_of(*verdicts: Verdict) -> Verdict:
    for verdict in verdicts:
        if not verdict.passed:
            return verdict
    return ok()


def write(workspace: Path, name: str, text: str) -> None:
    path = workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
