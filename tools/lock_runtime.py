#!/usr/bin/env python3
"""Write the hash-pinned lock of the claw package's runtime dependencies for the nodes.

Every file the nodes install is checked against a sha256 kept in the repository. The closure is resolved
with requirements/constraints.txt for every Python and CPU the appliance runs on (the Jetson's 3.10,
bookworm's 3.11, newer distributions); a package needed on only some of them gets an environment marker.
The hashes are those of the files pip
downloads for each target, from the indexes this machine's pip is configured with; the controller later
downloads a node's wheelhouse with ``--require-hashes`` against this lock, so the node needs no index at all.

    tools/lock_runtime.py                      # the base lock, roles/claw_apps/files/runtime-requirements.txt
    tools/lock_runtime.py --extra pi --machines aarch64 --output roles/claw_apps/files/pi-requirements.txt

With --extra, only the extra's own pins are written (they list their whole closure), for a second lock
installed beside the first with --no-deps; targets without wheels for them get none.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MACHINES = ("x86_64", "aarch64")
MANYLINUX = (*(f"manylinux_2_{minor}" for minor in range(36, 16, -1)), "manylinux2014")


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirements(extra: str | None) -> list[str]:
    return _project()["dependencies"] + (extra_requirements(extra) if extra else [])


def extra_requirements(extra: str) -> list[str]:
    return _project()["optional-dependencies"][extra]


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def download(
    reqs: list[str], python: str, machine: str, dest: Path, no_deps: bool = False
) -> dict[tuple[str, str], str]:
    """(name, version) -> sha256 of the file pip picks for one target: within the controller's constraints where
    the target can use them, else (an older Python that a pinned release has dropped) pip's own choice."""
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{machine}")]
    constraints = ["--constraint", str(REPO / "requirements/constraints.txt")]
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
        "--python-version", python, *platforms, "--dest", str(dest), *(["--no-deps"] if no_deps else []), *reqs,
    ]  # fmt: skip
    if subprocess.run([*command, *constraints], capture_output=True).returncode != 0:
        print(f"lock: Python {python} on {machine} cannot use every pin; resolving it unconstrained", file=sys.stderr)
        shutil.rmtree(dest)
        subprocess.run(command, check=True)
    return {_name_version(wheel.name): hashlib.sha256(wheel.read_bytes()).hexdigest() for wheel in dest.glob("*.whl")}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", help="also lock this optional-dependency group (e.g. pi)")
    parser.add_argument("--machines", nargs="+", default=list(MACHINES), choices=MACHINES)
    parser.add_argument("--output", type=Path, default=REPO / "roles/claw_apps/files/runtime-requirements.txt")
    args = parser.parse_args()
    pins: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    hashes: dict[tuple[str, str], set[str]] = defaultdict(set)
    with tempfile.TemporaryDirectory() as scratch:
        for python in PYTHONS:
            for machine in args.machines:
                found = download_target(args.extra, python, machine, Path(scratch) / f"{python}-{machine}")
                for pin, digest in found.items():
                    pins[pin].add((python, machine))
                    hashes[pin].add(digest)
    lines = [
        "# Runtime dependencies of the claw wheel on the nodes, every file hash-pinned.",
        f"# Generated by tools/lock_runtime.py{' --extra ' + args.extra if args.extra else ''}; do not edit.",
    ]
    kept = dict(pins)
    for (name, version), targets in sorted(kept.items()):
        lines.append(f"{name}=={version}{marker(targets, args.machines)} \\")
        digests = sorted(hashes[(name, version)])
        lines += [f"    --hash=sha256:{digest} \\" for digest in digests[:-1]] + [f"    --hash=sha256:{digests[-1]}"]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"lock: {len(kept)} pins written to {args.output.resolve().relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
