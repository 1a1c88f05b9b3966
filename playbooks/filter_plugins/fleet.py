"""Filters of playbooks/update.yml: the waves of a fleet update, counted in clusters rather than hosts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible.errors import AnsibleFilterError


def _batch_size(value: Any, total: int) -> int:
    """One item of `serial` as Ansible reads it: a count, or a percentage of the total (at least 1)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return int(float(text[:-1]) / 100.0 * total) or 1
        size = int(text)
    except ValueError as error:
        raise AnsibleFilterError(f"fleet_serial items are counts or percentages, got {value!r}") from error
    return size if size > 0 else total


def fleet_waves(
    clusters: Sequence[str], serial: Any = None, waves: Sequence[Sequence[str]] | None = None
) -> list[list[str]]:
    """Clusters grouped into waves: explicit `waves`, or `serial` (as a play's serial, over clusters).

    `serial` is a count, a percentage or a list of them: each wave takes the next item, the last one repeats
    (``[1, 2, "50%"]``: a canary, then two clusters, then half the fleet at a time).
    """
    order = list(dict.fromkeys(clusters))
    if waves:
        planned = [list(wave) for wave in waves if wave]
        named = [cluster for wave in planned for cluster in wave]
        unknown = sorted(set(named) - set(order))
        missing = [cluster for cluster in order if cluster not in named]
        twice = sorted({cluster for cluster in named if named.count(cluster) > 1})
        if unknown or missing or twice:
            raise AnsibleFilterError(
                "fleet_waves must name every cluster of the run once: "
                f"unknown {unknown}, missing {missing}, twice {twice}"
            )
        return planned
    items = list(serial) if isinstance(serial, (list, tuple)) else [serial if serial is not None else "100%"]
    if not items:
        items = ["100%"]
    result: list[list[str]] = []
    index = 0
    rest = order
    while rest:
        size = _batch_size(items[index], len(order))
        result.append(rest[:size])
        rest = rest[size:]
        index = min(index + 1, len(items) - 1)
    return result


def fleet_plan(
    host_clusters: Sequence[Sequence[str]],
    first: Sequence[str] = (),
    serial: Any = None,
    waves: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The update's order: hosts by wave, then by cluster, the `first` hosts (crush) of a cluster before the rest.

    `host_clusters` is ``[[host, cluster], ...]`` in inventory order. Returns ``waves`` (cluster names),
    ``hosts`` (the order the play walks) and ``batch_sizes`` (hosts per wave: the play's `serial`).
    """
    members: dict[str, list[str]] = {}
    for host, cluster in host_clusters:
        members.setdefault(str(cluster), []).append(str(host))
    planned = fleet_waves(list(members), serial, waves)
    hosts: list[str] = []
    sizes: list[int] = []
    for wave in planned:
        in_wave = []
        for cluster in wave:
            nodes = members[cluster]
            in_wave += [h for h in nodes if h in first] + [h for h in nodes if h not in first]
        hosts += in_wave
        sizes.append(len(in_wave))
    return {"waves": planned, "hosts": hosts, "batch_sizes": sizes}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_waves": fleet_waves, "fleet_plan": fleet_plan}
