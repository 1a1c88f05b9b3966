"""Ground truth, read when a check runs: the task's files as they are now, the fixture site's pages as served,
and this host's cores, memory, filesystems and network interfaces."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from smeep.checks import file_text
from smeep.toolbox import Bench
from smeep.website import PAGES


def items(bench: Bench) -> int:
    """What `ls` shows in the workspace right now."""
    return sum(1 for path in bench.workspace.iterdir() if not path.name.startswith("."))


def soul_name(bench: Bench) -> str:
    first = (file_text(bench, "SOUL.md") or "").splitlines()[:1]
    return first[0].lstrip("# ").strip() if first else "?"


def page(path: str, pattern: str) -> Callable[[Bench], str]:
    """A value read from the fixture site's page, as served."""

    def truth(bench: Bench) -> str:
        found = re.search(pattern, PAGES[path][1])
        return found.group(1) if found else "?"

    return truth


def meminfo_gib() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            fields[name] = int(rest.split()[0]) / (1 << 20)
    return fields


def filesystem_gib() -> list[float]:
    """Total, used and free of the root and every local block-device filesystem: a reply may mention more than
    the root (network mounts are left alone: statvfs on a dead one hangs)."""
    mounts = ["/"] + [f[1] for f in (line.split() for line in Path("/proc/mounts").read_text().splitlines())
                      if len(f) > 1 and f[0].startswith("/dev/")]  # fmt: skip
    figures: list[float] = []
    for mount in mounts:
        try:
            usage = shutil.disk_usage(mount)
        except OSError:
            continue
        figures += [usage.total / (1 << 30), usage.used / (1 << 30), usage.free / (1 << 30)]
    return figures


def cores(bench: Bench | None = None) -> float:
    """Logical CPUs, as /proc/cpuinfo lists them (what the system server's cpu tool counts)."""
    return float(os.cpu_count() or 0)


def interfaces() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def other_core_counts() -> tuple[float, ...]:
    """Other true answers: the CPUs this process may run on (fewer in a container with a CPU set) and the
    physical cores (fewer with SMT: "2 cores, 4 threads" is true of a 4-thread machine)."""
    counts = [float(len(os.sched_getaffinity(0)))] if hasattr(os, "sched_getaffinity") else []
    pairs, physical = set(), "0"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "physical id":
            physical = value
        elif key == "core id":
            pairs.add((physical, value))
    return (*counts, float(len(pairs))) if pairs else tuple(counts)


def line_count(name: str) -> Callable[[Bench], float]:
    return lambda bench: float(len((file_text(bench, name) or "").splitlines()))


def quantity(bench: Bench) -> float:
    rows = csv.DictReader((file_text(bench, "inventory.csv") or "").splitlines())
    return next((float(row["quantity"]) for row in rows if row["name"] == "widget-x9"), float("nan"))


def after(bench: Bench, name: str, label: str) -> str:
    """The value after ``label`` on its line of the file, as the file holds it now."""
    for line in (file_text(bench, name) or "").splitlines():
        if line.lower().startswith(label):
            return line[len(label) :].strip()
    return "?"


def build(bench: Bench) -> float:
    return float(json.loads(PAGES["/api/status.json"][1])["build"])
