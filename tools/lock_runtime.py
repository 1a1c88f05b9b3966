#!/usr/bin/env python3
"""Write the hash-pinned locks of every virtual environment the nodes get, one per board target.

Every file the nodes install is checked against a sha256 kept in the repository. Two kinds of lock:

- The union locks the controller installs from (``roles/claw_apps/files/
  runtime-requirements.txt`` and ``pi-requirements.txt``): the claw package's runtime closure resolved with
  requirements/constraints.txt for every Python and CPU the appliance runs on (the Jetson's 3.10, bookworm's 3.11,
  newer distributions); a package needed on only some of them gets an environment marker.
- The board locks the roles install and the air-gapped bundle fetches (``files/locks/<venv>-<target>.txt``), one
  per venv and TARGETS entry: the claw apps (the exporters run from their venv), the Pi's GPIO extra, and the
  llama.cpp server's dependencies.
  A claw lock holds the union lock's pins for that target with the hash of the one file its Python, CPU and glibc
  get; the llama.cpp server's lock is resolved for the target, with the version's constraints file where the
  target can use it. llama-cpp-python itself is in no lock: it is compiled on the node from its sdist
  (roles/llamacpp/tasks/build.yml) and smoke-tested there; its lock holds its dependencies, binary-only.

The hashes are those of the files pip downloads for each target, from the indexes this machine's pip is
configured with; the controller later downloads a node's wheelhouse with ``--require-hashes`` against these locks,
so the node needs no index at all.

    tools/lock_runtime.py                  # everything: union locks re-resolved, then every board lock (make lock)
    tools/lock_runtime.py --targets-only   # only the board locks, from the union locks as they stand
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import tomllib
import yaml
from packaging.markers import Marker

REPO = Path(__file__).resolve().parent.parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MACHINES = ("x86_64", "aarch64")
MANYLINUX = (*(f"manylinux_2_{minor}" for minor in range(36, 16, -1)), "manylinux2014")
CLAW_FILES = REPO / "roles/claw_apps/files"
LLAMACPP_FILES = REPO / "roles/llamacpp/files"
UNION_LOCKS = {"runtime": CLAW_FILES / "runtime-requirements.txt", "pi": CLAW_FILES / "pi-requirements.txt"}


@dataclass(frozen=True)
class Target:
    """A board's Python, CPU and glibc: what decides which wheel files it can install."""

    python: str
    machine: str
    glibc: int  # the minor of 2.x: the newest manylinux_2_x tag its glibc runs
    boards: str

    def platforms(self) -> list[str]:
        tags = (*(f"manylinux_2_{minor}" for minor in range(self.glibc, 16, -1)), "manylinux2014")
        return [arg for tag in tags for arg in ("--platform", f"{tag}_{self.machine}")]


# The key is <os><major>-<cpu>-py<major><minor>, as the roles compute it from the node's probe (claw_apps' and
# llamacpp's vars/main.yml). Raspberry Pi OS bookworm is Debian 12 (its os-release says ID=debian, VERSION_ID=12),
# with Debian's glibc 2.36 and Python 3.11: the Debian 12 arm64 lock serves it.
TARGETS = {
    "debian12-x86_64-py311": Target("3.11", "x86_64", 36, "Debian 12 on x86-64 (the demo and CI cluster)"),
    "debian12-aarch64-py311": Target("3.11", "aarch64", 36, "Debian 12 on arm64 and Raspberry Pi OS bookworm"),
    "ubuntu22-aarch64-py310": Target("3.10", "aarch64", 35, "JetPack 6 (Ubuntu 22.04) on a Jetson Orin"),
}
# What llama-cpp-python[server] requires (its sdist's Requires-Dist: the base and the server extra), per version:
# the engine is compiled on the node, so its own metadata is not read here; add the new version's on an update.
LLAMACPP_SERVER_REQUIREMENTS = {
    "0.3.36": [
        "typing-extensions>=4.5.0", "numpy>=1.20.0", "diskcache>=5.6.1", "jinja2>=2.11.3",
        "uvicorn>=0.22.0", "fastapi>=0.100.0", "pydantic-settings>=2.0.1", "sse-starlette>=1.6.1",
        "starlette-context>=0.3.6,<0.4", "PyYAML>=5.1",
    ],
}  # fmt: skip


def llamacpp_version() -> str:
    return str(yaml.safe_load((REPO / "roles/llamacpp/defaults/main.yml").read_text())["llamacpp_version"])


def board_locks() -> dict[Path, tuple[str, str]]:
    """Every board lock the roles install: path -> (venv, target key)."""
    locks = {}
    for key, target in TARGETS.items():
        locks[CLAW_FILES / f"locks/runtime-{key}.txt"] = ("runtime", key)
        if target.machine == "aarch64":  # the Blinkt!'s GPIO libraries have wheels for Arm only
            locks[CLAW_FILES / f"locks/pi-{key}.txt"] = ("pi", key)
        locks[LLAMACPP_FILES / f"locks/server-{llamacpp_version()}-{key}.txt"] = ("llamacpp-server", key)
    return locks


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirements(extra: str | None) -> list[str]:
    return _project()["dependencies"] + (extra_requirements(extra) if extra else [])


def extra_requirements(extra: str) -> list[str]:
    return _project()["optional-dependencies"][extra]


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def download(
    reqs: list[str],
    python: str,
    machine: str,
    dest: Path,
    no_deps: bool = False,
    constraints: Path = REPO / "requirements/constraints.txt",
    platforms: list[str] | None = None,
) -> dict[tuple[str, str], str]:
    """(name, version) -> sha256 of the file pip picks for one target: within the constraints where the target can
    use them, else (an older Python that a pinned release has dropped) pip's own choice."""
    platforms = platforms or [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{machine}")]
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
        "--python-version", python, *platforms, "--dest", str(dest), *(["--no-deps"] if no_deps else []), *reqs,
    ]  # fmt: skip
    if subprocess.run([*command, "--constraint", str(constraints)], capture_output=True).returncode != 0:
        print(f"lock: Python {python} on {machine} cannot use every pin; resolving it unconstrained", file=sys.stderr)
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(command, check=True)
    return hashed_wheels(dest)


def hashed_wheels(directory: Path) -> dict[tuple[str, str], str]:
    return {
        _name_version(wheel.name): hashlib.sha256(wheel.read_bytes()).hexdigest() for wheel in directory.glob("*.whl")
    }


def download_target(extra: str | None, python: str, machine: str, dest: Path) -> dict[tuple[str, str], str]:
    """The base closure, or an extra's own pins (which list their whole closure and install with --no-deps);
    a target the extra's packages do not support gets none of them."""
    if extra is None:
        return download(requirements(None), python, machine, dest)
    try:
        return download(extra_requirements(extra), python, machine, dest, no_deps=True)
    except subprocess.CalledProcessError:
        print(f"lock: extra {extra} has no wheels for Python {python} on {machine}; left out there", file=sys.stderr)
        return {}


def _name_version(filename: str) -> tuple[str, str]:
    project, version = filename.split("-")[:2]
    return canonical(project), version


def marker(targets: set[tuple[str, str]], machines: list[str]) -> str:
    """An environment marker for a package only some targets need (by Python version; CPU never differs)."""
    if targets == {(p, m) for p in PYTHONS for m in machines}:
        return ""
    pythons = sorted({p for p, _ in targets})
    if {(p, m) for p in pythons for m in machines} != targets:
        raise SystemExit(f"lock: a package needed on {sorted(targets)} only; extend marker()")
    return " ; " + " or ".join(f'python_version == "{p}"' for p in pythons)


def target_requirements(text: str, python: str) -> str:
    """The entries (pin and hash lines) of a union lock whose markers hold on one Python, without the markers: pip
    judges a marker by the Python it runs on, not by --python-version."""
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    entries = re.split(r"\n(?=\S)", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    kept = []
    for entry in filter(str.strip, entries):
        head, *hashes = entry.splitlines()
        pin, _, condition = head.rstrip(" \\").partition(";")
        if not condition.strip() or Marker(condition.strip()).evaluate(environment):
            kept.append("\n".join([f"{pin.strip()} \\", *hashes]))
    return "\n".join(kept) + "\n" if kept else ""


def write_lock(path: Path, header: list[str], pins: dict[tuple[str, str, str], set[str]]) -> None:
    """A requirements file of exact pins, (name, version, marker) -> the sha256 of every file it may install."""
    lines = [*header]
    for (name, version, condition), digests in sorted(pins.items()):
        ordered = sorted(digests)
        lines.append(f"{name}=={version}{condition} \\")
        lines += [f"    --hash=sha256:{digest} \\" for digest in ordered[:-1]] + [f"    --hash=sha256:{ordered[-1]}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"lock: {len(pins)} pins written to {path.relative_to(REPO)}", file=sys.stderr)


def write_union(extra: str | None, machines: list[str], output: Path) -> None:
    """Re-resolve a union lock for every Python and CPU (markers where the pins differ)."""
    pins: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    hashes: dict[tuple[str, str], set[str]] = defaultdict(set)
    with tempfile.TemporaryDirectory() as scratch:
        for python in PYTHONS:
            for machine in machines:
                found = download_target(extra, python, machine, Path(scratch) / f"{python}-{machine}")
                for pin, digest in found.items():
                    pins[pin].add((python, machine))
                    hashes[pin].add(digest)
    header = [
        "# Runtime dependencies of the claw wheel on the nodes, every file hash-pinned.",
        f"# Generated by tools/lock_runtime.py{' --extra ' + extra if extra else ''}; do not edit.",
    ]
    entries = {(*pin, marker(targets, machines)): hashes[pin] for pin, targets in pins.items()}
    write_lock(output, header, entries)


def write_board_lock(path: Path, venv: str, key: str) -> None:
    """One venv's lock for one board: its union lock's pins for the target with the hash of the one file the
    target gets, or (the llama.cpp server) a resolution for the target."""
    target = TARGETS[key]
    header = [
        f"# {venv} venv on {target.boards}: Python {target.python}, {target.machine}, glibc 2.{target.glibc}.",
        f"# Generated by tools/lock_runtime.py for {key}; do not edit.",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        dest = Path(scratch) / "wheels"
        if venv == "llamacpp-server":
            version = llamacpp_version()
            header.insert(1, f"# llama-cpp-python=={version} itself is compiled on the node from its sdist: not here.")
            found = download(
                LLAMACPP_SERVER_REQUIREMENTS[version], target.python, target.machine, dest,
                constraints=LLAMACPP_FILES / f"constraints-{version}.txt", platforms=target.platforms(),
            )  # fmt: skip
        else:
            wanted = Path(scratch) / "requirements.txt"
            wanted.write_text(target_requirements(UNION_LOCKS[venv].read_text(), target.python))
            subprocess.run([
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                "--only-binary", ":all:", "--python-version", target.python, *target.platforms(),
                "--dest", str(dest), "--requirement", str(wanted),
            ], check=True)  # fmt: skip
            found = hashed_wheels(dest)
    write_lock(path, header, {(*pin, ""): {digest} for pin, digest in found.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets-only", action="store_true", help="write the board locks from the union locks as they stand"
    )
    args = parser.parse_args()
    if not args.targets_only:
        write_union(None, list(MACHINES), UNION_LOCKS["runtime"])
        write_union("pi", ["aarch64"], UNION_LOCKS["pi"])
    for path, (venv, key) in board_locks().items():
        write_board_lock(path, venv, key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
