"""The results document (see SCHEMA.md): upstream's timestamp/models/tests/runs plus trials, summary, metadata."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from smeep.runner import summarise_statuses
from smeep.stats import reliability
from smeep.tasks import TASKS, Task

SCHEMA = "smeep-results/1"


def build(meta: dict[str, Any], tasks: list[Task], models: list[str], results: list[dict[str, Any]]) -> dict[str, Any]:
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        by_key[(result["model"], result["id"])].append(result)
    runs: dict[str, dict[str, Any]] = {}
    for model in models:
        runs[model] = {}
        for task in tasks:
            trials = sorted(by_key.get((model, task.id), []), key=lambda r: r["trial"])
            if trials:
                runs[model][task.id] = _entry(trials)
    return {
        "schema": SCHEMA,
        **meta,
        "models": models,
        "tests": [
            {"id": t.id, "tier": t.tier, "name": t.name, "suite": t.suite, "category": t.category, "mode": t.mode}
            for t in tasks
        ],
        "runs": runs,
        "summary": {model: summarise(runs[model]) for model in models},
    }


def _entry(trials: list[dict[str, Any]]) -> dict[str, Any]:
    times = [t["ms"] for t in trials if t.get("ms") is not None and t["status"] != "SKIP"]
    median = int(statistics.median(times)) if times else None
    nearest = min(trials, key=lambda t: abs((t.get("ms") or 0) - (median or 0)))
    return {
        "status": summarise_statuses([t["status"] for t in trials]),
        "ms": median,
        "ms_min": min(times) if times else None,
        "ms_max": max(times) if times else None,
        "reply": nearest.get("reply", ""),
        "tools": nearest.get("tools"),
        "tool_names": nearest.get("tool_names"),
        "input_tokens": nearest.get("input_tokens"),
        "output_tokens": nearest.get("output_tokens"),
        "error": nearest.get("error"),
        "passes": sum(t["status"] == "PASS" for t in trials),
        "trials": [
            {k: t.get(k) for k in ("trial", "status", "ms", "tools", "error", "seed", "temperature")} for t in trials
        ],
    }


def group_of(task_id: str) -> str:
    task = TASKS.get(task_id)
    if task is None:
        return "?"
    return f"T{task.tier}" if task.suite == "ladder" else task.category


def summarise(entries: dict[str, Any]) -> dict[str, Any]:
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    passes = eligible = 0
    times: list[int] = []
    failed: list[str] = []
    for task_id, entry in entries.items():
        if entry["status"] == "SKIP":
            continue
        group = groups[group_of(task_id)]
        group[1] += 1
        eligible += 1
        if entry["status"] == "PASS":
            group[0] += 1
            passes += 1
        else:
            failed.append(task_id)
        if entry["ms"] is not None:
            times.append(entry["ms"])
    outcomes = [
        [t["status"] == "PASS" for t in entry.get("trials", []) if t["status"] != "SKIP"]
        for entry in entries.values()
        if entry["status"] != "SKIP"
    ]
    return {
        **reliability(outcomes),
        "passes": passes,
        "eligible": eligible,
        "pass_rate": round(passes / eligible, 3) if eligible else None,
        "avg_ms": int(statistics.mean(times)) if times else None,
        "groups": {name: {"passes": p, "total": n} for name, (p, n) in sorted(groups.items())},
        "failed": failed,
    }
