#!/usr/bin/env python3
"""Push-mode fleet update speed: the wall time of ONE update wave of 1, 2, 4 and 8 clusters.

Builds throw-away one-node clusters (each node is its cluster's claw and crush) as systemd containers reached
over SSH like real boards (playbooks/demo.yml's role with its own names, network and key: benchfleet-<i> on
network benchfleet, so a demo cluster or a Molecule run is left alone), converges them once with the fleet
scenario's light role set (molecule/fleet/converge.yml: base, claw apps, LED daemon), then times
playbooks/update.yml with every cluster of the run in one wave (fleet_waves = [[c1 .. cN]]). Each timed run
applies a new claw apps release (molecule/shared/release.yml: the checkout with version <v>.post<k>) through the
shared wave tasks (molecule/shared/tasks/wave.yml with the fleet scenario's roles) between the pre- and
post-update health gates, so every node really installs, restarts and records something; the benchmark checks
that each node ends on that release.

Target (issue #9): 8 clusters take at most 3x one cluster. The table also shows the CPU the controller
(ansible-playbook and its workers) and the whole machine used per run: the simulated nodes share this machine's
cores, so "machine busy" near "wall s x cores" means the run was bound by this machine, not by Ansible.
Controller settings come from ansible.cfg and the environment (ANSIBLE_FORKS=5 make bench-fleet to compare).
The containers, network and release caches are removed at the end, also after a failure or Ctrl-C.

--scale 50,200,1000 (issue #20): the controller's cost per cluster as the fleet grows, with no container. Each
size is a fresh stand-in fleet (tests/fleet_stand_in.py, as the local fleet tests use it): N one-host clusters
reached over the local connection, each node a directory under .cache/bench-fleet/scale/<N> with its claw apps
release 1.0 and `current` link, its state, journal, unit and script directories. Then ONE run of the real
playbooks/update.yml with all N clusters in one wave (fleet_waves = [[1 .. N]]): the real wave planner, fact
gathering, journal (recover, snapshot, close), bill of materials, run report and health gates (the stand-in's
gate is the commands check, here "the node's app/current resolves"); the wave's tasks install release 2.0 and
switch the link (the stand-in's SWITCH_APP). Every node must end on 2.0, its run recorded as applied, and the
report must list every cluster as updated. Network namespaces are not needed: the playbook only tells hosts
apart by inventory_hostname, and each host's paths are its own, so a local connection per host is the lightest
host that still runs every task of the play for every cluster.
Pipelining is on, as ansible.cfg has it for the real nodes' SSH. The modules the "nodes" run are started through
a wrapper interpreter that adds their CPU time to a file, so the controller's CPU (ansible-playbook, its forks,
the lookups and the tasks delegated to localhost) is the run's child CPU minus the nodes'; "main" is the
ansible-playbook process's own share (one thread). Goal: the controller's CPU per cluster stays within 1.5x of the
smallest size's. make bench-fleet BENCH_FLEET_ARGS="--scale 50,200,1000" (with --repeat, --json, --logs, --keep
as above; no container runtime needed); the measured curve and a projection for 10,000 clusters are in
docs/fleets.md ("The controller's cost per cluster").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from perfutil import (
    RECAP,
    BenchError,
    changed,
    container_cpu_seconds,
    cpu_seconds,
    host_facts,
    machine_busy_seconds,
    proc_status_kib,
    ssh_node_vars,
)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # the stand-in fleet is tests/fleet_stand_in.py (last: never ahead of the venv)
from tests import fleet_stand_in  # noqa: E402

BIN = Path(sys.executable).parent
SCENARIO = REPO / "molecule" / "fleet"
# What the update scenarios share: the new release's sources and the wave tasks.
SHARED = REPO / "molecule" / "shared"
STATE = REPO / ".cache" / "bench-fleet"
PREFIX = "benchfleet"
NETWORK = {"demo_cluster_network": PREFIX, "demo_cluster_subnet": "10.89.79.0/24"}
TARGET_RATIO = 3.0
TARGET_CLUSTERS = 8
SETTINGS = {
    "DEFAULT_FORKS": "forks",
    "DEFAULT_GATHERING": "gathering",
    "CACHE_PLUGIN": "fact cache",
    "DEFAULT_STRATEGY": "strategy",
}
SSH_SETTINGS = {"pipelining": "ssh pipelining", "ssh_args": "ssh args"}
# --scale: the controller's CPU per cluster at the largest size within this factor of the smallest size's.
SCALE_TARGET = 1.5
SCALE_STATE = STATE / "scale"
SCALE_PLAYBOOK = REPO / "playbooks" / "update.yml"


@dataclass
class Run:
    """One timed update wave."""

    clusters: int
    release: str
    wall_s: float
    controller_cpu_s: float
    machine_busy_s: float
    nodes_cpu_s: float = math.nan
    changed: dict[str, int] = field(default_factory=dict)
    # The controller setting this run changed (e.g. ANSIBLE_FORKS=5); empty: ansible.cfg as it is.
    setting: str = ""


@dataclass
class Row:
    """The table's line for one fleet size (the median run when repeated)."""

    clusters: int
    wall_s: float
    ratio: float
    per_cluster_s: float
    controller_cpu_s: float
    machine_busy_s: float
    runs: int
    nodes_cpu_s: float = math.nan


def parse_counts(text: str) -> list[int]:
    """ "1,2,4,8" -> [1, 2, 4, 8]: positive, distinct, ascending."""
    try:
        counts = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"cluster counts are integers separated by commas, got {text!r}") from error
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"cluster counts must be at least 1, got {text!r}")
    return counts


def parse_setting(text: str) -> str:
    """An environment setting to compare, ANSIBLE_<NAME>=<value>."""
    key, sep, _ = text.partition("=")
    if not sep or not key.startswith("ANSIBLE_") or not key.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"a setting is ANSIBLE_<NAME>=<value>, got {text!r}")
    return text


def node_names(count: int) -> list[str]:
    return [f"{PREFIX}-{index}" for index in range(1, count + 1)]


def cluster_names(count: int) -> list[str]:
    return [f"c{index}" for index in range(1, count + 1)]


def demo_vars(count: int, state: Path, present: bool = True) -> dict:
    """playbooks/demo.yml's variables for `count` benchmark nodes (10.89.79.11 onwards)."""
    nodes = [{"name": name, "ipv4": f"10.89.79.{10 + index}"} for index, name in enumerate(node_names(count), 1)]
    return {
        **NETWORK,
        "demo_cluster_nodes": nodes,
        "demo_cluster_state_dir": str(state),
        "demo_cluster_state": "present" if present else "absent",
    }


def inventory(count: int, state: Path) -> dict:
    """A fleet inventory of `count` one-node clusters c1..cN: every node is in claw, crush and cluster_c<i>."""
    nodes = demo_vars(count, state)["demo_cluster_nodes"]
    hosts = {node["name"]: {"ansible_host": node["ipv4"]} for node in nodes}
    clusters = {
        f"cluster_{cluster}": {"hosts": {node["name"]: {}}}
        for cluster, node in zip(cluster_names(count), nodes, strict=True)
    }
    return {
        "all": {
            "children": {"claw": {"hosts": hosts}, "crush": {"hosts": {name: {} for name in hosts}}, **clusters},
            "vars": {
                **ssh_node_vars(state),
                # The fleet scenario's light set: what a wave applies and the gate that checks it.
                "fleet_update_tasks": str(SHARED / "tasks" / "wave.yml"),
                "molecule_wave_roles": ["claw_apps", "leds"],
                "appliance_health_gates": ["node", "commands", "leds"],
                "leds_watcher_enabled": False,
                # The benchmark's own release archives (a fresh build for each release, removed at the end).
                "claw_apps_cache_dir": str(state / "claw-releases"),
            },
        }
    }


def table(runs: Sequence[Run], target: float = TARGET_RATIO) -> tuple[list[Row], str]:
    """Rows per fleet size (median wall time of its runs), ratios to the smallest size, and the verdict line."""
    runs = [run for run in runs if not run.setting]
    sizes = sorted({run.clusters for run in runs})
    rows: list[Row] = []
    for size in sizes:
        mine = sorted((run for run in runs if run.clusters == size), key=lambda run: run.wall_s)
        middle = mine[(len(mine) - 1) // 2]
        wall = statistics.median(run.wall_s for run in mine)
        rows.append(
            Row(
                size, wall, 0.0, wall / size, middle.controller_cpu_s, middle.machine_busy_s, len(mine),
                middle.nodes_cpu_s,
            )
        )  # fmt: skip
    base = rows[0].wall_s if rows else 0.0
    for row in rows:
        row.ratio = row.wall_s / base if base else float("nan")
    verdict = ""
    if rows and rows[0].clusters == 1 and rows[-1].clusters > 1:
        last = rows[-1]
        mark = "PASS" if last.ratio <= target else "MISS"
        verdict = f"{mark}: {last.clusters} clusters take {last.ratio:.2f}x one cluster (target <= {target:g}x)"
        if last.clusters != TARGET_CLUSTERS:
            verdict += f"; the target is set for {TARGET_CLUSTERS} clusters"
    return rows, verdict


def format_table(rows: Sequence[Row], cores: int) -> str:
    """The table. "own" is the controller's and the nodes' CPU time as a share of wall x cores, "machine" all
    of this machine's busy time (other work included) as that share."""
    head = (
        f"{'clusters':>8} {'wall s':>8} {'ratio':>6} {'s/cluster':>9} {'ctrl CPU s':>10} {'nodes CPU s':>11} "
        f"{'own':>5} {'machine':>7} {'runs':>4}"
    )
    lines = [head]
    for row in rows:
        capacity = row.wall_s * cores
        own = (row.controller_cpu_s + row.nodes_cpu_s) / capacity if capacity else math.nan
        busy = row.machine_busy_s / capacity if capacity else math.nan
        lines.append(
            f"{row.clusters:8d} {row.wall_s:8.1f} {row.ratio:6.2f} {row.per_cluster_s:9.1f} "
            f"{row.controller_cpu_s:10.1f} {row.nodes_cpu_s:11.1f} {own:5.0%} {busy:7.0%} {row.runs:4d}"
        )
    return "\n".join(lines)


def ansible(*args: str, check: bool = True, setting: str = "") -> tuple[float, float, str]:
    """Run an Ansible command from the venv in the checkout: wall seconds, CPU seconds of it and its children
    (the controller's share of the work: ansible-playbook, its forks and the modules it runs locally), output."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    if setting:
        key, _, value = setting.partition("=")
        env[key] = value
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and done.returncode != 0:
        raise BenchError(f"{' '.join(args[:4])} ... failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return elapsed, cpu, done.stdout


def settings() -> dict[str, str]:
    """The controller settings that shape a push run, as ansible-config reads them here (cfg + environment);
    pipelining and ssh_args are the ssh connection plugin's own ([ssh_connection]), not the global ones."""
    _, _, general = ansible("ansible-config", "dump", check=False)
    _, _, plugins = ansible("ansible-config", "dump", "-t", "connection", check=False)
    ssh = plugins.partition("\nssh:\n")[2]
    found = parse_dump(general, SETTINGS)
    found.update(parse_dump(ssh.split(":\n", 1)[0].rsplit("\n", 1)[0], SSH_SETTINGS))
    return found


def parse_dump(text: str, names: dict[str, str]) -> dict[str, str]:
    """`NAME(origin) = value` lines of ansible-config dump, for the names wanted, under their labels."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _, rest = line.partition("(")
        if key.strip() in names:
            found[names[key.strip()]] = rest.partition(" = ")[2].strip()
    return found


def node_release(name: str) -> str:
    done = subprocess.run(["podman", "exec", name, "readlink", "/opt/claw/current"], capture_output=True, text=True)
    return done.stdout.strip().rsplit("/", 1)[-1]


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C, so the cleanup in `finally` runs either way."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_inventory(count: int, state: Path) -> Path:
    path = state / f"inventory-{count}.json"
    path.write_text(json.dumps(inventory(count, state), indent=1))
    return path


def update_wave(count: int, post: int, state: Path, logs: Path | None = None, setting: str = "") -> Run:
    """A new release (<v>.post<post>) pushed to clusters c1..c<count> in one wave of playbooks/update.yml
    (with `setting` in the environment of ansible-playbook, if given)."""
    source = state / f"release-{post}"
    ansible(
        "ansible-playbook", "-i", ",", str(SHARED / "release.yml"), "-e",
        json.dumps(
            {"molecule_release_source": str(REPO), "molecule_release_dir": str(source), "molecule_release_post": post}
        ),
    )  # fmt: skip
    extra = {"fleet_waves": [cluster_names(count)], "claw_apps_source_dir": str(source)}
    nodes = node_names(count)
    nodes_cpu = sum(map(container_cpu_seconds, nodes))
    busy = machine_busy_seconds()
    wall, cpu, out = ansible(
        "ansible-playbook", "-i", str(write_inventory(count, state)), "playbooks/update.yml", "-e", json.dumps(extra),
        setting=setting,
    )  # fmt: skip
    busy = machine_busy_seconds() - busy
    nodes_cpu = sum(map(container_cpu_seconds, nodes)) - nodes_cpu
    if logs:
        (logs / f"update-{post:02d}-{count}-clusters.log").write_text(out)
    releases = {name: node_release(name) for name in node_names(count)}
    stale = {name: release for name, release in releases.items() if f".post{post}-" not in release}
    if stale:
        raise BenchError(f"the wave of {count} did not put .post{post} on every node: {stale}")
    return Run(count, next(iter(releases.values())), wall, cpu, busy, nodes_cpu, changed(out), setting)


def converge(size: int, state: Path, logs: Path | None = None) -> float:
    """The first release on nodes 1..size with the fleet scenario's light role set: wall seconds."""
    converge_s, _, out = ansible(
        "ansible-playbook", "-i", str(write_inventory(size, state)), str(SCENARIO / "converge.yml")
    )
    if logs:
        (logs / "converge.log").write_text(out)
    print(f"converged {size} nodes in {converge_s:.1f} s", flush=True)
    return converge_s


def rounds(counts: list[int], repeat: int, state: Path, logs: Path | None = None) -> list[Run]:
    """A timed wave of each size, `repeat` times (sizes interleaved), each with a new release."""
    runs: list[Run] = []
    for round_ in range(1, repeat + 1):
        for count in counts:
            run = update_wave(count, len(runs) + 1, state, logs)
            runs.append(run)
            print(
                f"round {round_}: {count} cluster(s) {run.wall_s:6.1f} s, controller CPU {run.controller_cpu_s:.1f}"
                f" s, nodes CPU {run.nodes_cpu_s:.1f} s, machine busy {run.machine_busy_s:.1f} s,"
                f" release {run.release}, changed {run.changed}",
                flush=True,
            )
    return runs


def format_compare(runs: Sequence[Run], rows: Sequence[Row]) -> str:
    """The waves run with a changed setting, against the default's median at the same size."""
    default = {row.clusters: row.wall_s for row in rows}
    lines = []
    for run in (run for run in runs if run.setting):
        base = default.get(run.clusters)
        versus = f"{run.wall_s / base:5.2f}x the default" if base else "no default run of that size"
        lines.append(
            f"  {run.setting:32} {run.clusters:3d} clusters {run.wall_s:8.1f} s  {versus}"
            f"  (controller CPU {run.controller_cpu_s:.1f} s)"
        )
    return "\n".join(lines)


# --- --scale: the controller's cost per cluster, on stand-in clusters (no container) ---------------------------

# The stand-in nodes' Python: runs the module, then appends this shell's and the module's CPU time (`times`: two
# lines, user and system) to the run's node CPU file.
NODE_PYTHON = """#!/bin/sh
{python} "$@"
rc=$?
times >> {cpu}
exit $rc
"""
TIMES = re.compile(r"(\d+)m(\d+(?:\.\d+)?)s")
# The stand-in's acceptance check (the commands gate, before and after the update): the node's app resolves.
APP_GATE = [["test", "-d", f"{fleet_stand_in.NODE}/app/current/"]]


@dataclass
class ScaleRun:
    """One update wave of all the stand-in clusters."""

    clusters: int
    wall_s: float
    controller_cpu_s: float
    nodes_cpu_s: float
    # The peak resident memory of the ansible-playbook process (its forks share most of it).
    peak_rss_mib: float
    # Tasks that ran on a node (ok= of its recap; the fewest: the run_once tasks count only on the first host).
    tasks_per_node: int
    # The 1-minute load average when the wave started and when it ended.
    load_before: float
    load_after: float
    build_s: float = 0.0
    # Of the controller's CPU, what the ansible-playbook process itself used (one thread: the strategy, the results,
    # the callbacks); the rest is its forks' (one per host and task) and their local commands.
    main_cpu_s: float = math.nan


@dataclass
class ScaleRow:
    """The table's line for one fleet size (the run with the median controller CPU when repeated)."""

    clusters: int
    wall_s: float
    controller_cpu_s: float
    cpu_ms_per_cluster: float
    wall_ms_per_cluster: float
    cpu_ratio: float
    wall_ratio: float
    nodes_cpu_s: float
    peak_rss_mib: float
    load_before: float
    runs: int
    main_ms_per_cluster: float = math.nan


def node_cpu_seconds(text: str) -> float:
    """The sum of the `times` lines the node wrapper appended (each `<m>m<s>s <m>m<s>s`: user, system)."""
    return sum(int(minutes) * 60 + float(seconds) for minutes, seconds in TIMES.findall(text))


def scale_fleet(root: Path, count: int) -> Path:
    """``count`` stand-in clusters 1..count under ``root`` (tests/fleet_stand_in.py), all of them in one wave
    of update.yml, on claw apps 1.0, with the commands gate, the run report under ``root`` and the node wrapper
    as every node's Python."""
    hosts = fleet_stand_in.numbered_hosts(count)
    root.mkdir(parents=True)
    python = root / "node-python"
    python.write_text(NODE_PYTHON.format(python=shlex.quote(sys.executable), cpu=shlex.quote(str(root / "node-cpu"))))
    python.chmod(0o755)
    return fleet_stand_in.one_app(
        root, hosts, fleet_stand_in.SWITCH_APP, REPO / "playbooks" / "group_vars",
        {"appliance_gate_commands": APP_GATE},
        fleet_waves=[[fleet_stand_in.cluster_of(host) for host in hosts]],
        fleet_report=str(root / "report.json"),
        ansible_python_interpreter=str(python),
        # As ansible.cfg has it for the real nodes' ssh connection: one process a task, the module on its stdin.
        ansible_pipelining=True,
    )  # fmt: skip


def check_updated(root: Path, count: int) -> None:
    """Every stand-in node on release 2.0, recorded as applied with its journal closed; every cluster updated in
    the run's report. BenchError naming the first few that are not."""
    new = "2.0"
    wrong: list[str] = []
    for host in fleet_stand_in.numbered_hosts(count):
        node = root / host
        try:
            current = (node / "app/current").readlink().name
            bom = json.loads((node / "state/bom.json").read_text())["components"]["claw_apps"]["release"]
            result = json.loads((node / "state/last-update.json").read_text())["result"]
            journal = json.loads((node / "state/update-journal.json").read_text()).get("status")
        except (OSError, ValueError, KeyError, TypeError) as error:
            wrong.append(f"{host}: {error}")
            continue
        if (current, bom, result, journal) != (new, new, "applied", "closed"):
            wrong.append(f"{host}: current {current}, bom {bom}, record {result}, journal {journal}")
    try:
        report = json.loads((root / "report.json").read_text())["clusters"]
        outcomes = {name: entry["outcome"] for name, entry in report.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        wrong.append(f"the run's report: {error!r}")
        outcomes = {}
    wrong += [f"cluster {name}: {outcome}" for name, outcome in outcomes.items() if outcome != "updated"]
    if outcomes and len(outcomes) != count:
        wrong.append(f"the report lists {len(outcomes)} clusters, not {count}")
    if wrong:
        raise BenchError(f"the wave of {count} clusters did not end on release {new} everywhere: {wrong[:10]}")


def measured(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float, float, float, int]:
    """Run ``command`` with its output in ``log``: wall seconds, CPU seconds of it and all its descendants, CPU
    seconds of its own process alone and its peak resident memory in MiB (both read from /proc while it runs, every
    0.2 s), and its exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    peak_kib = 0
    own = 0.0
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            with suppress(OSError, BenchError, ValueError, IndexError):
                peak_kib = max(peak_kib, proc_status_kib(process.pid, "VmHWM"))
                own = max(own, cpu_seconds(process.pid))
            time.sleep(0.2)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, own, peak_kib / 1024, process.returncode


def scale_wave(count: int, state: Path, logs: Path | None = None, keep: bool = False) -> ScaleRun:
    """One run of playbooks/update.yml over ``count`` fresh stand-in clusters in one wave, checked and timed."""
    root = state / str(count)
    subprocess.run(["rm", "-rf", str(root)], check=False)
    start = time.perf_counter()
    scale_fleet(root, count)
    build_s = time.perf_counter() - start
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    log = (logs or root) / f"update-{count}-clusters.log"
    load_before = os.getloadavg()[0]
    command = [str(BIN / "ansible-playbook"), "-i", str(root / "inventory.yml"), str(SCALE_PLAYBOOK)]
    wall, cpu, main_cpu, peak, rc = measured(command, env, log)
    load_after = os.getloadavg()[0]
    out = log.read_text()
    if rc != 0:
        raise BenchError(f"update.yml over {count} stand-in clusters failed ({rc}):\n{out[-4000:]}")
    check_updated(root, count)
    cpu_file = root / "node-cpu"
    nodes = node_cpu_seconds(cpu_file.read_text()) if cpu_file.exists() else 0.0
    oks = sorted(int(ok) for _host, ok, *_ in RECAP.findall(out))
    if len(oks) != count:
        raise BenchError(f"the recap of the wave of {count} names {len(oks)} hosts")
    if not keep:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    return ScaleRun(count, wall, cpu - nodes, nodes, peak, oks[0], load_before, load_after, build_s, main_cpu)


def scale_table(runs: Sequence[ScaleRun], target: float = SCALE_TARGET) -> tuple[list[ScaleRow], str]:
    """Rows per fleet size (the run with the median controller CPU), per-cluster costs and their ratios to the
    smallest size's, and the verdict on the controller's CPU per cluster (the worst size against the smallest)."""
    rows: list[ScaleRow] = []
    for size in sorted({run.clusters for run in runs}):
        mine = sorted((run for run in runs if run.clusters == size), key=lambda run: run.controller_cpu_s)
        run = mine[(len(mine) - 1) // 2]
        rows.append(
            ScaleRow(
                size, run.wall_s, run.controller_cpu_s, 1000 * run.controller_cpu_s / size, 1000 * run.wall_s / size,
                1.0, 1.0, run.nodes_cpu_s, run.peak_rss_mib, run.load_before, len(mine),
                1000 * run.main_cpu_s / size,
            )
        )  # fmt: skip
    if not rows:
        return rows, ""
    base = rows[0]
    for row in rows:
        row.cpu_ratio = row.cpu_ms_per_cluster / base.cpu_ms_per_cluster if base.cpu_ms_per_cluster else math.nan
        row.wall_ratio = row.wall_ms_per_cluster / base.wall_ms_per_cluster if base.wall_ms_per_cluster else math.nan
    if len(rows) < 2:
        return rows, ""
    worst = max(rows[1:], key=lambda row: row.cpu_ratio)
    mark = "PASS" if worst.cpu_ratio <= target else "MISS"
    verdict = (
        f"{mark}: the controller's CPU per cluster at {worst.clusters} clusters is {worst.cpu_ratio:.2f}x that at "
        f"{base.clusters} (target <= {target:g}x)"
    )
    return rows, verdict


def format_scale_table(rows: Sequence[ScaleRow]) -> str:
    """The scale table: per-cluster costs in ms and their ratios to the first row's."""
    head = (
        f"{'clusters':>8} {'wall s':>8} {'ctrl CPU s':>10} {'CPU ms/cl':>9} {'wall ms/cl':>10} {'CPU x':>6} "
        f"{'wall x':>6} {'main ms/cl':>10} {'nodes CPU s':>11} {'ctrl MiB':>8} {'load':>5} {'runs':>4}"
    )
    lines = [head]
    for row in rows:
        lines.append(
            f"{row.clusters:8d} {row.wall_s:8.1f} {row.controller_cpu_s:10.1f} {row.cpu_ms_per_cluster:9.0f} "
            f"{row.wall_ms_per_cluster:10.0f} {row.cpu_ratio:6.2f} {row.wall_ratio:6.2f} "
            f"{row.main_ms_per_cluster:10.0f} {row.nodes_cpu_s:11.1f} {row.peak_rss_mib:8.0f} {row.load_before:5.2f} "
            f"{row.runs:4d}"
        )
    return "\n".join(lines)


def scale_main(counts: list[int], repeat: int, json_path: Path | None, logs: Path | None, keep: bool) -> int:
    """--scale: a wave of each size (``repeat`` times, sizes interleaved), the table and the verdict."""
    facts = {**host_facts(BIN, runtime=False), **settings()}
    facts.pop("ssh args", None)  # the stand-ins' connection is local; pipelining is as set for ssh (above)
    facts["load average"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    runs: list[ScaleRun] = []
    SCALE_STATE.mkdir(parents=True, exist_ok=True)
    with interruptible():
        try:
            for round_ in range(1, repeat + 1):
                for count in counts:
                    run = scale_wave(count, SCALE_STATE, logs, keep)
                    runs.append(run)
                    print(
                        f"round {round_}: {count} stand-in clusters {run.wall_s:7.1f} s, controller CPU "
                        f"{run.controller_cpu_s:.1f} s (ansible-playbook itself {run.main_cpu_s:.1f} s), nodes CPU "
                        f"{run.nodes_cpu_s:.1f} s, peak "
                        f"{run.peak_rss_mib:.0f} MiB, {run.tasks_per_node} tasks a node, load "
                        f"{run.load_before:.2f} -> {run.load_after:.2f} (built in {run.build_s:.1f} s)",
                        flush=True,
                    )
        except BenchError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            if not keep:
                subprocess.run(["rm", "-rf", str(SCALE_STATE)], check=False)
    rows, verdict = scale_table(runs)
    facts["load average after"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    print("PicoCluster Claw fleet update: the controller's cost per cluster (update.yml, one wave, stand-in clusters)")
    for key, value in facts.items():
        print(f"  {key:18} {value}")
    print(format_scale_table(rows))
    if verdict:
        print(verdict, flush=True)
    if json_path:
        report = {
            "facts": facts,
            "runs": [asdict(run) for run in runs],
            "table": [asdict(row) for row in rows],
            "verdict": verdict,
        }
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=parse_counts, default=[1, 2, 4, 8], help="fleet sizes (default 1,2,4,8)")
    parser.add_argument("--repeat", type=int, default=1, help="timed waves per size; the table shows the median")
    parser.add_argument("--json", type=Path, help="also write the runs and the table here")
    parser.add_argument(
        "--compare",
        type=parse_setting,
        action="append",
        default=[],
        metavar="ANSIBLE_X=V",
        help="after the table's runs, one more wave of the largest size with this setting (repeatable)",
    )
    parser.add_argument("--logs", type=Path, help="keep the playbooks' output in this directory")
    parser.add_argument(
        "--keep", action="store_true", help="leave the benchmark nodes running (--scale: the stand-ins under .cache)"
    )
    parser.add_argument(
        "--scale",
        type=parse_counts,
        metavar="N,N,..",
        help="instead: the controller's cost per cluster, one wave of N stand-in clusters each (e.g. 50,200,1000)",
    )
    args = parser.parse_args(argv)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.scale:
        if args.compare:
            parser.error("--compare is for the container waves, not --scale")
        return scale_main(args.scale, args.repeat, args.json, args.logs, args.keep)
    size = max(args.clusters)
    cores = os.cpu_count() or 1
    controller = settings()
    STATE.mkdir(parents=True, exist_ok=True)
    absent = json.dumps(demo_vars(max(size, 8), STATE, present=False))
    facts = {**host_facts(BIN), **controller}
    runs: list[Run] = []
    with interruptible():
        try:
            ansible("ansible-playbook", "playbooks/demo.yml", "-e", absent)
            create_s, _, _ = ansible("ansible-playbook", "playbooks/demo.yml", "-e", json.dumps(demo_vars(size, STATE)))
            print(f"created {size} nodes in {create_s:.1f} s", flush=True)
            converge_s = converge(size, STATE, args.logs)
            runs += rounds(args.clusters, args.repeat, STATE, args.logs)
            rows, verdict = table(runs)
            print(f"PicoCluster Claw fleet update benchmark (playbooks/update.yml, one wave of up to {size} clusters)")
            for key, value in facts.items():
                print(f"  {key:18} {value}")
            print(f"  {'nodes created in':18} {create_s:6.1f} s; first converge (light role set) {converge_s:.1f} s")
            print(format_table(rows, cores))
            if verdict:
                print(verdict, flush=True)
            write_json(args.json, facts, converge_s, runs, rows, verdict)
            for setting in args.compare:
                run = update_wave(size, len(runs) + 1, STATE, args.logs, setting)
                runs.append(run)
                print(f"{setting}: {size} clusters {run.wall_s:.1f} s", flush=True)
                write_json(args.json, facts, converge_s, runs, rows, verdict)
            if args.compare:
                print("settings compared (one wave each, the rest as above):")
                print(format_compare(runs, rows))
        except BenchError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            if not args.keep:
                ansible("ansible-playbook", "playbooks/demo.yml", "-e", absent, check=False)
                subprocess.run(["rm", "-rf", str(STATE)], check=False)
    return 0


def write_json(
    path: Path | None, facts: dict, converge_s: float, runs: Sequence[Run], rows: Sequence[Row], verdict: str
) -> None:
    if path:
        report = {
            "facts": facts,
            "converge_s": converge_s,
            "runs": [asdict(run) for run in runs],
            "table": [asdict(row) for row in rows],
            "verdict": verdict,
        }
        path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
