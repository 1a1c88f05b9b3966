"""Filters of playbooks/update.yml: the waves of a fleet update, counted in clusters rather than hosts.

Every size (fleet_serial's items, fleet_canary, fleet_max_wave, fleet_failure_budget) is a whole number of clusters
or a percentage ("10%"): of the clusters to update for the wave sizes, of the wave's clusters for the failure budget.
A value that is neither stops the plan with an error naming it, before any node is touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

# What an update report says of a cluster (docs/fleets.md): fleet_resume_from skips the "updated" ones.
OUTCOMES = ("updated", "rolled back", "unreachable", "failed", "not started")
REPORT_SHAPE = '{"clusters": {"<name>": {"outcome": "updated|rolled back|unreachable|failed|not started", "wave": N}}}'

_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)(%?)")


def _amount(value: Any, name: str, minimum: int) -> tuple[float, bool]:
    """``value`` as (number, is a percentage): a whole number >= ``minimum``, or a percentage of at most 100%
    (above 0% unless ``minimum`` is 0). Anything else (a negative or a fraction of a cluster, a word, a list, a
    boolean, null) is an error that names the variable, the value and what is allowed."""
    match = _AMOUNT.fullmatch(str(value).strip())  # never True, None, 2.5, [1] or {}: their text does not match
    if match:
        number, percent = float(match[1]), match[2] == "%"
        if percent and number <= 100 and (number > 0 or minimum == 0):
            return number, True
        if not percent and match[1].isdigit() and number >= minimum:
            return number, False
    limit = "0 or more" if minimum == 0 else "1 or more"
    low = "0%" if minimum == 0 else "above 0%"
    raise AnsibleFilterError(
        f"{name} must be a whole number of clusters ({limit}) or a percentage ({low}, at most 100%), got {value!r}"
    )


def _count(amount: tuple[float, bool], total: int, minimum: int) -> int:
    """An amount in clusters: a percentage of ``total`` rounded down, at least ``minimum``."""
    number, percent = amount
    return max(minimum, int(number * total / 100)) if percent else int(number)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _updated(report: Any) -> set[str]:
    """The clusters that the report of an earlier run (a mapping, its JSON text or the path of its file) lists as
    updated."""
    if report is None or report == "":
        return set()
    if isinstance(report, str):
        text: str | bytes = report
        if not report.lstrip().startswith("{"):
            try:
                text = Path(report).expanduser().read_bytes()
            except OSError as error:
                raise AnsibleFilterError(f"fleet_resume_from: cannot read the report {report!r} ({error})") from error
        try:
            report = json.loads(text)
        except ValueError as error:
            raise AnsibleFilterError(f"fleet_resume_from: the report is not JSON ({error})") from error
    clusters = report.get("clusters") if isinstance(report, Mapping) else None
    if not isinstance(clusters, Mapping):
        raise AnsibleFilterError(f"fleet_resume_from must be an update report {REPORT_SHAPE}, got {report!r}")
    updated = set()
    for name, entry in clusters.items():
        outcome = entry.get("outcome") if isinstance(entry, Mapping) else None
        if outcome not in OUTCOMES:
            raise AnsibleFilterError(
                f"fleet_resume_from: cluster {name!r} has the outcome {outcome!r}, expected one of {list(OUTCOMES)}"
            )
        if outcome == "updated":
            updated.add(str(name))
    return updated


def _explicit_waves(waves: Any, order: list[str]) -> list[list[str]]:
    """``waves`` checked: a non-empty list of non-empty lists of names, every cluster of the run exactly once."""
    if not _is_list(waves) or not waves:
        raise AnsibleFilterError(
            f"fleet_waves must be a non-empty list of waves, each a list of cluster names, got {waves!r}"
        )
    for wave in waves:
        if not _is_list(wave) or not wave or not all(isinstance(cluster, str) for cluster in wave):
            raise AnsibleFilterError(f"fleet_waves: a wave must be a non-empty list of cluster names, got {wave!r}")
    planned = [list(wave) for wave in waves]
    named = [cluster for wave in planned for cluster in wave]
    unknown = sorted(set(named) - set(order))
    missing = [cluster for cluster in order if cluster not in named]
    twice = sorted({cluster for cluster in named if named.count(cluster) > 1})
    if unknown or missing or twice:
        raise AnsibleFilterError(
            "fleet_waves must name every cluster of the run once (the inventory's clusters, after --limit): "
            f"unknown {unknown}, missing {missing}, twice {twice}"
        )
    return planned


def fleet_waves(
    clusters: Sequence[str],
    serial: Any = None,
    waves: Sequence[Sequence[str]] | None = None,
    *,
    canary: Any = None,
    max_wave: Any = None,
    resume_from: Any = None,
) -> list[list[str]]:
    """Clusters grouped into waves: explicit ``waves``, or ``serial`` (as a play's serial, over clusters).

    ``serial`` is a count, a percentage or a list of them: each wave takes the next item, the last one repeats
    (``[1, 2, "50%"]``: a canary, then two clusters, then half the fleet at a time); None is one wave.
    ``canary`` (a count or a percentage) is the first wave's size, ``serial`` then sizes the waves after it.
    ``max_wave`` caps every wave that ``serial`` and ``canary`` size (not explicit ``waves``); None: no cap.
    ``resume_from`` is an earlier run's report: the clusters it lists as updated are left out.
    Percentages are of the clusters left to update.
    """
    order = list(dict.fromkeys(clusters))
    done = _updated(resume_from)
    if waves is not None:
        if canary is not None:
            raise AnsibleFilterError("fleet_canary and fleet_waves exclude each other: name the canary's wave instead")
        planned = [[cluster for cluster in wave if cluster not in done] for wave in _explicit_waves(waves, order)]
        return [wave for wave in planned if wave]
    items = list(serial) if _is_list(serial) else ["100%" if serial is None else serial]
    if not items:
        raise AnsibleFilterError("fleet_serial must not be an empty list: give at least one count or percentage")
    amounts = [_amount(item, "fleet_serial", 1) for item in items]
    if canary is not None:
        amounts.insert(0, _amount(canary, "fleet_canary", 1))
    cap = None if max_wave is None else _amount(max_wave, "fleet_max_wave", 1)
    rest = [cluster for cluster in order if cluster not in done]
    total = len(rest)
    limit = total if cap is None else _count(cap, total, 1)
    result: list[list[str]] = []
    while rest:
        size = min(_count(amounts[min(len(result), len(amounts) - 1)], total, 1), limit)
        result.append(rest[:size])
        rest = rest[size:]
    return result


def fleet_plan(
    host_clusters: Sequence[Sequence[str]],
    first: Sequence[str] = (),
    serial: Any = None,
    waves: Sequence[Sequence[str]] | None = None,
    *,
    canary: Any = None,
    max_wave: Any = None,
    failure_budget: Any = 0,
    resume_from: Any = None,
) -> dict[str, Any]:
    """The update's order: hosts by wave, then by cluster, the ``first`` hosts (crush) of a cluster before the rest.

    ``host_clusters`` is ``[[host, cluster], ...]`` in inventory order; the other arguments are fleet_waves' and
    ``failure_budget``, the clusters of a wave that may fail (and be rolled back) before the run stops: a count or a
    percentage of the wave, never the whole wave. Returns ``waves`` (cluster names), ``hosts`` (the order the play
    walks), ``batch_sizes`` (hosts per wave: the play's `serial`), ``failure_budgets`` (clusters per wave),
    ``wave_of`` (cluster: its wave, from 1) and ``skipped`` (the clusters the report lists as updated).
    """
    members: dict[str, list[str]] = {}
    for host, cluster in host_clusters:
        members.setdefault(str(cluster), []).append(str(host))
    budget = _amount(failure_budget, "fleet_failure_budget", 0)
    planned = fleet_waves(list(members), serial, waves, canary=canary, max_wave=max_wave, resume_from=resume_from)
    hosts: list[str] = []
    sizes: list[int] = []
    budgets: list[int] = []
    wave_of: dict[str, int] = {}
    for number, wave in enumerate(planned, start=1):
        in_wave = []
        for cluster in wave:
            nodes = members[cluster]
            in_wave += [h for h in nodes if h in first] + [h for h in nodes if h not in first]
            wave_of[cluster] = number
        hosts += in_wave
        sizes.append(len(in_wave))
        budgets.append(min(_count(budget, len(wave), 0), len(wave) - 1))
    skipped = [cluster for cluster in members if cluster not in wave_of]
    return {
        "waves": planned,
        "hosts": hosts,
        "batch_sizes": sizes,
        "failure_budgets": budgets,
        "wave_of": wave_of,
        "skipped": skipped,
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_waves": fleet_waves, "fleet_plan": fleet_plan}
