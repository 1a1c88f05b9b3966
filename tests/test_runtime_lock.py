"""The nodes' hash-pinned runtime locks and the controller module that turns them into a node's wheelhouse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from tests.modules import load_file

REPO = Path(__file__).resolve().parent.parent
FILES = REPO / "roles/claw_apps/files"


load = load_file


@pytest.fixture(scope="module")
def release():
    return load(REPO / "roles/claw_apps/library/claw_release.py", "claw_release")


@pytest.fixture(scope="module")
def lock_tool():
    return load(REPO / "tools/lock_runtime.py", "lock_runtime")


def requirement_heads(text: str) -> list[Requirement]:
    heads = [line.rstrip(" \\") for line in text.splitlines() if line and not line.startswith(("#", " "))]
    return [Requirement(head) for head in heads]


def test_module_downloads_with_the_tags_the_lock_was_made_with(release, lock_tool):
    assert release.MANYLINUX == lock_tool.MANYLINUX


@pytest.mark.parametrize("lock", ["runtime-requirements.txt", "pi-requirements.txt"])
def test_every_pin_is_exact_and_hashed(lock):
    text = (FILES / lock).read_text()
    entries = re.split(r"\n(?=\S)", text.split("\n", 2)[2].strip())
    assert entries
    for entry in entries:
        head, *hashes = [part.strip(" \\") for part in entry.splitlines()]
        assert "==" in head, head
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), entry


def test_base_lock_covers_every_runtime_dependency_on_every_python():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = requirement_heads((FILES / "runtime-requirements.txt").read_text())
    for python in ("3.10", "3.11", "3.12", "3.13"):
        env = {"python_version": python, "python_full_version": f"{python}.0"}
        here = {pin.name.lower().replace("_", "-"): pin for pin in pins if not pin.marker or pin.marker.evaluate(env)}
        for dependency in map(Requirement, project["dependencies"]):
            name = dependency.name.lower().replace("_", "-")
            assert name in here, (python, name)
            version = next(iter(here[name].specifier)).version
            assert dependency.specifier.contains(version), (python, name, version)


@pytest.mark.parametrize(("python", "expected"), [("3.10", "fastapi==0.162.5"), ("3.11", "fastapi==0.165.0")])
def test_target_requirements_keep_the_lines_for_the_nodes_python(release, python, expected):
    text = release.target_requirements(FILES / "runtime-requirements.txt", python)
    fastapi = [r for r in requirement_heads(text) if r.name == "fastapi"]
    assert [f"{r.name}{r.specifier}" for r in fastapi] == [expected]
    assert "--hash=sha256:" in text


def test_target_requirements_drop_the_markers_pip_would_judge_by_the_controllers_python(release):
    # pip on a 3.11 controller would skip `; python_version == "3.10"` pins when it downloads for a 3.10 node.
    text = release.target_requirements(FILES / "runtime-requirements.txt", "3.10")
    assert "annotated-doc==0.0.6 \\\n" in text
    assert "python_version" not in text
    assert all(not r.marker for r in requirement_heads(text))


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.13"])
def test_the_module_and_the_lock_tool_cut_a_union_lock_alike(release, lock_tool, python):
    for lock in ("runtime-requirements.txt", "pi-requirements.txt"):
        by_module = release.target_requirements(FILES / lock, python)
        by_tool = lock_tool.target_requirements((FILES / lock).read_text(), python)
        assert by_module == by_tool, (lock, python)


def test_pi_extra_leaves_out_the_legacy_gpio_library_and_unsupported_pythons(release):
    assert "rpi-gpio" not in (FILES / "pi-requirements.txt").read_text().lower()
    on_bookworm = requirement_heads(release.target_requirements(FILES / "pi-requirements.txt", "3.11"))
    assert {r.name for r in on_bookworm} == {"blinkt", "rpi-lgpio", "lgpio"}
    assert release.target_requirements(FILES / "pi-requirements.txt", "3.13") == ""


def test_inputs_digest_follows_what_the_archive_is_made_of(release, tmp_path):
    source = tmp_path / "src"
    (source / "apps" / "claw").mkdir(parents=True)
    (source / "benchmarks").mkdir()
    (source / "pyproject.toml").write_text("[project]\nname = 'claw'\nversion = '1.0'\n")
    (source / "README.md").write_text("readme\n")
    (source / "apps" / "claw" / "cli.py").write_text("print('v1')\n")
    lock = tmp_path / "lock.txt"
    lock.write_text("a==1 --hash=sha256:" + "0" * 64 + "\n")
    first = release.inputs_digest(source, [lock], "py3.11 aarch64")
    assert release.inputs_digest(source, [lock], "py3.11 aarch64") == first
    # Build debris is not an input.
    (source / "apps" / "claw" / "__pycache__").mkdir()
    (source / "apps" / "claw" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"x")
    (source / "apps" / "claw.egg-info").mkdir()
    (source / "apps" / "claw.egg-info" / "PKG-INFO").write_text("x")
    (source / "build").mkdir()
    (source / "build" / "lib.py").write_text("x")
    assert release.inputs_digest(source, [lock], "py3.11 aarch64") == first
    # Nor is SMEEP: its own distribution (benchmarks/pyproject.toml), not in the appliance's wheel.
    (source / "benchmarks" / "pyproject.toml").write_text("[project]\nname = 'smeep'\n")
    (source / "benchmarks" / "smeep").mkdir()
    (source / "benchmarks" / "smeep" / "cli.py").write_text("print('smeep')\n")
    assert release.inputs_digest(source, [lock], "py3.11 aarch64") == first
    # The sources, a new file, the lock and the target are.
    assert release.inputs_digest(source, [lock], "py3.11 x86_64") != first
    (source / "apps" / "claw" / "new.py").write_text("")
    second = release.inputs_digest(source, [lock], "py3.11 aarch64")
    assert second != first
    (source / "apps" / "claw" / "cli.py").write_text("print('v2')\n")
    third = release.inputs_digest(source, [lock], "py3.11 aarch64")
    assert third not in (first, second)
    lock.write_text("a==2 --hash=sha256:" + "1" * 64 + "\n")
    assert release.inputs_digest(source, [lock], "py3.11 aarch64") not in (first, second, third)
