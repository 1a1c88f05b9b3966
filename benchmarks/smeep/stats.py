"""Reliability over repeated trials, as tau-bench reports it: pass@1 (the mean success rate) and pass^k (the chance
that all k trials of a task succeed, estimated per task as C(c, k) / C(n, k) from c passes in n trials, averaged
over tasks), with the spread of pass@1 between repeats."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from math import comb
from typing import Any


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(k trials drawn without replacement from n, c of them passes, all pass)."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"needs 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    return comb(c, k) / comb(n, k)


def reliability(tasks: Sequence[Sequence[bool]]) -> dict[str, Any]:
    """Per task, the outcomes of its trials in repeat order (SKIPs left out). pass^k for k = 1 .. the fewest
    trials any task has; ``per_repeat``: the pass rate of repeat r over the tasks that have an r-th trial."""
    tasks = [list(t) for t in tasks if t]
    if not tasks:
        return {"pass_at_1": None, "pass_hat_k": {}, "per_repeat": [], "spread": None}
    shortest = min(len(t) for t in tasks)
    hat = {
        str(k): round(statistics.mean(pass_hat_k(len(t), sum(t), k) for t in tasks), 4) for k in range(1, shortest + 1)
    }
    longest = max(len(t) for t in tasks)
    per_repeat = [round(statistics.mean(t[r] for t in tasks if len(t) > r), 4) for r in range(longest)]
    spread = {
        "min": min(per_repeat),
        "max": max(per_repeat),
        "stdev": round(statistics.stdev(per_repeat), 4) if len(per_repeat) > 1 else 0.0,
    }
    pass_at_1 = round(statistics.mean(sum(t) / len(t) for t in tasks), 4)
    return {"pass_at_1": pass_at_1, "pass_hat_k": hat, "per_repeat": per_repeat, "spread": spread}
