"""One hash-pinned lock per venv and board target (tools/lock_runtime.py TARGETS), each proven installable on its
board: resolved binary-only for the board's Python, CPU and glibc, every file checked against the lock's hash.

The resolution downloads through this machine's pip configuration into ~/.cache/picocluster-claw/lock-wheels and
first tries that cache alone (--no-index), so a rerun needs no network. Without network and with a cold cache the
tests fail: a lock that cannot be shown to install on its board fails CI. llama-cpp-python itself is in no lock
(it is compiled from its sdist on the node, roles/llamacpp/tasks/build.yml); its lock holds its dependencies.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml
from packaging.requirements import Requirement

from tests.modules import load_file

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "picocluster-claw/lock-wheels"


load = load_file


tool = load(REPO / "tools/lock_runtime.py", "lock_runtime_for_board_locks")
LOCKS = tool.board_locks()


def entries(text: str) -> list[tuple[str, list[str]]]:
    """(pin line, hash lines) of each entry of a requirements file."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    out = []
    for entry in filter(str.strip, re.split(r"\n(?=\S)", body)):
        head, *hashes = [part.strip(" \\") for part in entry.splitlines()]
        out.append((head, hashes))
    return out


def pins(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """canonical name -> (version, hashes)."""
    found = {}
    for head, hashes in entries(text):
        requirement = Requirement(head)
        found[tool.canonical(requirement.name)] = (next(iter(requirement.specifier)).version, frozenset(hashes))
    return found


def resolve(lock: Path, target, no_deps: bool = False) -> subprocess.CompletedProcess:
    """pip download of the whole lock for the target, binary-only and hash-checked, dependencies included (in
    hash-checking mode pip refuses a dependency the lock does not pin): from the cache alone, else from the
    indexes. An extra installed with --no-deps beside the runtime (the Pi's) is resolved so too."""
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
        "--require-hashes", "--python-version", target.python, *target.platforms(), "--dest", str(CACHE),
        "--requirement", str(lock), *(["--no-deps"] if no_deps else []),
    ]  # fmt: skip
    with (CACHE / ".resolving").open("a") as guard:  # pytest's workers share the cache: one pip at a time
        fcntl.flock(guard, fcntl.LOCK_EX)
        offline = subprocess.run([*command, "--no-index", "--find-links", str(CACHE)], capture_output=True, text=True)
        if offline.returncode == 0:
            return offline
        return subprocess.run(command, capture_output=True, text=True)


def test_every_venv_of_every_target_has_its_lock_and_nothing_else_is_there():
    expected = set(LOCKS)
    assert {venv for venv, _ in LOCKS.values()} == {"runtime", "pi", "llamacpp-server"}
    assert {key for _, key in LOCKS.values()} == set(tool.TARGETS)
    present = {*(tool.CLAW_FILES / "locks").glob("*"), *(tool.LLAMACPP_FILES / "locks").glob("*")}
    assert present == expected, (sorted(map(str, present - expected)), sorted(map(str, expected - present)))


def test_the_boards_targets():
    # JetPack 6 is Ubuntu 22.04 (glibc 2.35, Python 3.10); Raspberry Pi OS bookworm shares Debian 12's lock.
    assert {key: (t.python, t.machine, t.glibc) for key, t in tool.TARGETS.items()} == {
        "debian12-x86_64-py311": ("3.11", "x86_64", 36),
        "debian12-aarch64-py311": ("3.11", "aarch64", 36),
        "ubuntu22-aarch64-py310": ("3.10", "aarch64", 35),
    }
    platforms = tool.TARGETS["ubuntu22-aarch64-py310"].platforms()
    assert "manylinux_2_35_aarch64" in platforms and "manylinux_2_36_aarch64" not in platforms


@pytest.mark.parametrize("lock", sorted(LOCKS), ids=lambda path: path.name)
def test_every_pin_is_exact_unconditional_and_has_one_hash(lock):
    found = entries(lock.read_text())
    assert found
    for head, hashes in found:
        assert re.fullmatch(r"[a-z0-9-]+==[A-Za-z0-9.+!]+", head), head  # no marker: the lock is for one Python
        assert len(hashes) == 1 and re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", hashes[0]), (head, hashes)


@pytest.mark.parametrize(("lock", "union"), [
    (lock, tool.UNION_LOCKS[venv]) for lock, (venv, _) in sorted(LOCKS.items()) if venv in tool.UNION_LOCKS
], ids=lambda item: item.name)  # fmt: skip
def test_a_claw_lock_is_its_union_locks_pins_for_the_target(lock, union):
    """A board lock is the union lock's pins for its target: the controller's union and the nodes' (and the
    bundle's) board locks never disagree."""
    target = tool.TARGETS[LOCKS[lock][1]]
    wanted = pins(tool.target_requirements(union.read_text(), target.python))
    have = pins(lock.read_text())
    assert have.keys() == wanted.keys()
    for name, (version, hashes) in have.items():
        assert version == wanted[name][0] and hashes <= wanted[name][1], name


def test_the_llamacpp_locks_hold_the_engines_dependencies_but_not_the_engine():
    version = tool.llamacpp_version()
    requirements = [Requirement(r) for r in tool.LLAMACPP_SERVER_REQUIREMENTS[version]]
    constraints = {
        tool.canonical(Requirement(line).name): str(Requirement(line).specifier)
        for line in (tool.LLAMACPP_FILES / f"constraints-{version}.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for lock, (venv, key) in LOCKS.items():
        if venv != "llamacpp-server":
            continue
        have = pins(lock.read_text())
        assert "llama-cpp-python" not in have, lock.name
        for requirement in requirements:
            name = tool.canonical(requirement.name)
            assert name in have and requirement.specifier.contains(have[name][0]), (lock.name, name)
        if tool.TARGETS[key].python == "3.11":
            # The version's constraints file (Python 3.11) and the 3.11 boards' locks agree on every version.
            assert {name: f"=={v}" for name, (v, _) in have.items()} == constraints, lock.name


FACTS = {
    # (distribution, major version, CPU, Python) as a node reports them, and the lock key it must get.
    "Debian 12 PC": (("Debian", "12", "x86_64", (3, 11)), "debian12-x86_64-py311"),
    "Raspberry Pi OS bookworm": (("Debian", "12", "aarch64", (3, 11)), "debian12-aarch64-py311"),
    "JetPack 6": (("Ubuntu", "22", "aarch64", (3, 10)), "ubuntu22-aarch64-py310"),
}


def role_var(role: str, name: str) -> str:
    return yaml.safe_load((REPO / f"roles/{role}/vars/main.yml").read_text())[name]


@pytest.mark.parametrize("board", sorted(FACTS))
def test_the_roles_pick_the_boards_lock_from_their_probes(board):
    (distribution, major, machine, (py_major, py_minor)), key = FACTS[board]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    facts = {
        "distribution": distribution, "distribution_major_version": major, "architecture": machine,
        "python": {"version": {"major": py_major, "minor": py_minor}},
    }  # fmt: skip
    llamacpp = env.from_string(role_var("llamacpp", "_llamacpp_target")).render(ansible_facts=facts)
    # claw_apps probes its own interpreter: os-release's ID and major VERSION_ID, platform.machine(), the version.
    claw = env.from_string(role_var("claw_apps", "_claw_apps_target")).render(
        _claw_apps_os=f"{distribution.lower()}{major}", _claw_apps_machine=machine,
        _claw_apps_python_version=f"{py_major}.{py_minor}",
    )  # fmt: skip
    assert llamacpp == claw == key
    version = tool.llamacpp_version()
    assert (tool.CLAW_FILES / f"locks/runtime-{key}.txt") in LOCKS
    assert (tool.LLAMACPP_FILES / f"locks/server-{version}-{key}.txt") in LOCKS


def test_the_bundle_without_a_probe_gets_the_debian_pc_lock():
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    key = env.from_string(role_var("claw_apps", "_claw_apps_target")).render(
        _claw_apps_machine="x86_64", _claw_apps_python_version="3.11"
    )
    assert key == "debian12-x86_64-py311"


@pytest.mark.parametrize("lock", sorted(LOCKS), ids=lambda path: path.name)
def test_the_lock_installs_on_its_board(lock):
    venv, key = LOCKS[lock]
    target = tool.TARGETS[key]
    # The Pi's extra goes in with --no-deps: rpi-lgpio is the drop-in for blinkt's RPi.GPIO, which is left out.
    result = resolve(lock, target, no_deps=venv == "pi")
    assert result.returncode == 0, f"{lock.name} does not resolve for {target}:\n{result.stderr[-3000:]}"


def test_the_resolution_refuses_the_numpy_that_jetpack_6_cannot_install(tmp_path):
    """The check has teeth: the Jetson's server lock with constraints-0.3.36.txt's numpy==2.4.6 (the Debian 12 arm64
    lock's file, which needs Python 3.11) instead of its own numpy fails to resolve for JetPack 6."""
    version = tool.llamacpp_version()
    jetson = (tool.LLAMACPP_FILES / f"locks/server-{version}-ubuntu22-aarch64-py310.txt").read_text()
    debian = (tool.LLAMACPP_FILES / f"locks/server-{version}-debian12-aarch64-py311.txt").read_text()
    assert "numpy==2.4.6" in (tool.LLAMACPP_FILES / f"constraints-{version}.txt").read_text()
    numpy = re.compile(r"^numpy==.*?(?=^\S|\Z)", re.MULTILINE | re.DOTALL)
    lock = tmp_path / "server-jetson-with-debian-numpy.txt"
    lock.write_text(numpy.sub(numpy.search(debian).group(0), jetson))
    assert "numpy==2.4.6" in lock.read_text() and "numpy==2.2.6" not in lock.read_text()
    result = resolve(lock, tool.TARGETS["ubuntu22-aarch64-py310"])
    assert result.returncode != 0
    assert "No matching distribution found for numpy==2.4.6" in result.stderr, result.stderr[-3000:]
