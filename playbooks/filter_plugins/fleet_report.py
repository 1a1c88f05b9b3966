"""The run report of playbooks/update.yml: every cluster's outcome, updated at the start and the end of each wave."""

from __future__ import annotations

from typing import Any


def fleet_report(
    report: dict[str, Any] | None,
    waves: list[list[str]],
    hosts: dict[str, str],
    live: list[str],
    failed_clusters: list[str],
    phase: str,
    now: str,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """``report`` with the wave of ``hosts`` (host to cluster) at ``phase`` ``start`` or ``end``.

    ``skipped``: the clusters an earlier run updated (the plan's, from ``fleet_resume_from``), listed as
    ``updated`` with no wave and a ``detail`` saying so, so a resumed run's report covers the whole fleet and can be
    resumed from in turn.

    At the start the wave's clusters are ``failed`` (the outcome that stays if the run ends inside the wave: the
    controller stopped, or a task failed outside the wave's rescue). At the end a host not in ``live`` (the
    batch's hosts still running) is unreachable: a host that failed outside the wave's rescue ends the run before
    this point. A cluster is unreachable if one of its nodes is, rolled back
    if it is in ``failed_clusters``, updated otherwise. The run's ``result``: ``running`` while waves remain,
    ``stopped`` after a wave with a cluster that was not updated, ``completed`` when every cluster was updated.
    """
    if phase not in ("start", "end"):
        raise ValueError(f"fleet_report: phase must be start or end, got {phase!r}")
    report = dict(report or {})
    if "clusters" not in report:
        report = {
            "playbook": "playbooks/update.yml",
            "started": now,
            "waves": waves,
            "clusters": {
                cluster: {"wave": index + 1, "outcome": "not started", "hosts": {}}
                for index, wave in enumerate(waves)
                for cluster in wave
            },
        }
        for cluster in skipped or []:
            detail = "updated by an earlier run (fleet_resume_from); not updated again"
            report["clusters"][cluster] = {"wave": None, "outcome": "updated", "hosts": {}, "detail": detail}
    clusters = {name: dict(entry) for name, entry in report["clusters"].items()}
    by_cluster: dict[str, dict[str, str]] = {}
    for host, cluster in hosts.items():
        if phase == "start":
            outcome = "failed"
        elif host not in live:
            outcome = "unreachable"
        else:
            outcome = "rolled back" if cluster in failed_clusters else "updated"
        by_cluster.setdefault(cluster, {})[host] = outcome
    for cluster, outcomes in by_cluster.items():
        entry = clusters.setdefault(cluster, {"wave": None, "outcome": "not started", "hosts": {}})
        values = set(outcomes.values())
        entry["hosts"] = dict(sorted(outcomes.items()))
        entry["outcome"] = next(o for o in ("failed", "unreachable", "rolled back", "updated") if o in values)
        entry["time"] = now
        if phase == "start":
            entry["detail"] = "wave started; no outcome was written (the run ended inside this wave)"
        else:
            entry.pop("detail", None)
    outcomes_now = [entry["outcome"] for entry in clusters.values()]
    if phase == "start":
        result = "running"
    elif any(o in ("unreachable", "rolled back", "failed") for o in outcomes_now):
        result = "stopped"
    elif all(o == "updated" for o in outcomes_now):
        result = "completed"
    else:
        result = "running"
    return {**report, "clusters": clusters, "result": result, "updated": now}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_report": fleet_report}
