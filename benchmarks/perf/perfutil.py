"""What the perf benchmarks share: percentiles, free loopback ports, /proc memory and CPU readings, stopping
processes, the controller's facts and ansible-playbook recaps.

Imported by the scripts beside it (``python benchmarks/perf/NAME.py`` puts this folder on the path). exporters.py
and inference.py are also copied to a node as single files and run there: inference.py keeps its own few lines,
exporters.py imports this only in the mode that starts exporters in a checkout (never with --url).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class BenchError(RuntimeError):
    """A measurement could not run; the message says which and why."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p99/max in milliseconds (and the count) of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 99), "max_ms": max(ms), "n": len(ms)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def rss(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak, in MiB."""
    return {"rss_mib": proc_status_kib(pid, "VmRSS") / 1024, "peak_mib": proc_status_kib(pid, "VmHWM") / 1024}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/PID/stat, clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[Any], what: str, log: Path, timeout: float = 30
) -> None:
    """Poll ``ready`` (OSError counts as not yet) until it is true; BenchError with the log's tail if the process
    exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.05)
    raise BenchError(f"{what} was not ready within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def machine_busy_seconds() -> float:
    """CPU time all cores of this machine have spent busy since boot (/proc/stat; idle and iowait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def changed(recap: str) -> dict[str, int]:
    """changed= per host of an ansible-playbook PLAY RECAP (the last recap line of a host wins)."""
    return {host: int(ch) for host, _ok, ch, _u, _f in RECAP.findall(recap)}


def host_facts(bin_dir: Path, runtime: bool = True) -> dict[str, str]:
    """The controller a benchmark ran on: ansible-core (from ``bin_dir``), Python, cores, memory, kernel and, if
    ``runtime``, podman's version."""
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    version = subprocess.run([str(bin_dir / "ansible"), "--version"], capture_output=True, text=True).stdout
    facts = {
        "ansible-core": version.splitlines()[0].split("[core ")[-1].rstrip("]"),
        "python": platform.python_version(),
        "cpu cores": str(os.cpu_count()),
        "memory": f"{mem_kib / 1048576:.1f} GiB",
        "kernel": platform.release(),
        "machine": platform.machine(),
    }
    if runtime:
        podman = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
        facts["container runtime"] = podman
    return facts


def container_cpu_seconds(name: str) -> float:
    """CPU time a podman container has used so far, from its cgroup (v1 cpuacct or v2 cpu.stat); NaN if unread."""
    done = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.CgroupPath}}", name], capture_output=True, text=True
    )
    path = done.stdout.strip().lstrip("/")
    v1 = Path("/sys/fs/cgroup/cpuacct") / path / "cpuacct.usage"
    if path and v1.is_file():
        return int(v1.read_text()) / 1e9
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        stat = root / path / "cpu.stat"
        if path and stat.is_file():
            usage = dict(line.split() for line in stat.read_text().splitlines() if line.strip())
            if "usage_usec" in usage:
                return int(usage["usage_usec"]) / 1e6
    return math.nan


# The site's extra CAs (a TLS-inspecting proxy's), trusted by benchmark nodes as role base trusts them.
SITE_CAS = "{{ query('ansible.builtin.fileglob', '/usr/local/share/ca-certificates/*.crt') }}"


def ssh_node_vars(state: str | Path) -> dict[str, object]:
    """Inventory variables for benchmark nodes reached as root over SSH with a key kept in ``state``."""
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": f"{state}/id_ed25519",
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={state}/known_hosts -o StrictHostKeyChecking=accept-new",
        "base_ca_certificates": SITE_CAS,
    }


REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmarks' fake engine, run as a module from the repository root (tests/doubles/bench_engine.py).
BENCH_ENGINE = [sys.executable, "-m", "tests.doubles.bench_engine"]


@contextlib.contextmanager
def bench_engine(*args: str) -> Iterator[str]:
    """Start the benchmarks' fake engine (tests/doubles/bench_engine.py, its own process); yields its base URL."""
    process = subprocess.Popen([*BENCH_ENGINE, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise BenchError(f"the fake engine did not start (exit {process.poll()})")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        stop(process)
