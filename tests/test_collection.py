"""Any subset of the test folders collects in any order.

A test module must import its helpers by their full name (``tests.doubles.http``), never by a bare name that
resolves to whichever ``conftest`` or folder pytest happened to load last, and never by putting a folder on
``sys.path`` (benchmarks/perf/mcp.py would then shadow the MCP SDK). Each case runs ``pytest --collect-only`` in a
fresh process, the way ``make pytest`` starts it (the venv's ``pytest`` script, so the current directory is not
on the path).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FOLDERS = sorted(path.name for path in TESTS.iterdir() if path.is_dir() and any(path.glob("test_*.py")))
FILES = sorted(path.name for path in TESTS.glob("test_*.py"))
EVERYTHING = [f"tests/{name}" for name in FOLDERS + FILES]


def collect(paths: list[str]) -> list[str]:
    """The node ids pytest collects from paths, in that order; fails on any collection error."""
    command = [str(Path(sys.executable).with_name("pytest")), "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, *paths], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )  # fmt: skip
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    report = "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "::" not in line)
    assert done.returncode == 0, f"pytest --collect-only {' '.join(paths)} exited {done.returncode}:\n{report[-6000:]}"
    summary = report.strip().splitlines()[-1] if report.strip() else ""
    assert " collected" in summary and "error" not in summary, report[-6000:]
    return ids


def test_the_lists_below_cover_every_folder():
    assert {"crush", "mcp", "perf", "smeep", "status", "threadweaver"} <= set(FOLDERS)


@pytest.mark.parametrize(
    "paths",
    [
        # the conftest.py of the last folder given used to be the one `from conftest import` found
        pytest.param(["tests/threadweaver", "tests/mcp", "tests/smeep"], id="threadweaver-mcp-smeep"),
        # benchmarks/perf on sys.path used to make `import mcp` find benchmarks/perf/mcp.py
        pytest.param(["tests/perf", "tests/mcp"], id="perf-mcp"),
    ],
)
def test_a_subset_collects(paths):
    assert collect(paths)


def test_every_folder_and_file_collects_in_reverse_order():
    assert len(collect(EVERYTHING[::-1])) > 900


SCENARIOS = sorted(path.parents[1].name for path in (REPO / "molecule").glob("*/tests/conftest.py"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_molecule_suite_collects_from_its_scenario(scenario):
    """Molecule's testinfra verifier runs pytest in the scenario's folder: its suite imports the shared node
    helpers and doubles by their full names (``tests.nodes``, ``tests.doubles.node``), with no ``sys.path`` edits
    and no folder-local copies (a scenario's ``tests`` folder used to clash with the repository's)."""
    suite = REPO / "molecule" / scenario / "tests"
    assert not any("sys.path" in path.read_text() for path in suite.glob("*.py")), f"{suite} edits sys.path"
    assert collect([str(suite)])


def test_no_test_double_lives_in_a_scenario():
    """Test doubles live in one place, tests/doubles/; scenarios keep only the hardware files the code reads."""
    stray = [
        path.relative_to(REPO)
        for path in (REPO / "molecule").glob("*/files/*")
        if path.is_file() and path.read_bytes().startswith(b"#!/") and b"http.server" in path.read_bytes()
    ]
    assert not stray, f"servers outside tests/doubles: {stray}"
