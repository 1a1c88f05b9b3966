#!/usr/bin/env python3
"""Mutation testing of the modules that guard fleets, files and money (make mutation).

mutmut changes each guarded module in many small ways (a comparison flipped, a number off by one, a string
changed) and runs the module's tests against every change; a test must fail for each of them ("killed"). A module
whose tests kill fewer than THRESHOLD percent of its mutants fails the run, with the survivors listed.

Each module runs in its own work directory, .cache/mutation/<module>/ (out of git and of every linter, like the
rest of .cache): links to the repository's top-level entries, and a pyproject.toml that is the repository's plus a
[tool.mutmut] table for that module. mutmut copies them into mutants/ there and runs the tests in that copy. Every
run starts afresh (mutmut keeps a verdict until the function changes, not when the tests do); --keep reuses the
last run's verdicts.

    python tools/mutation.py                                   # every guarded module
    python tools/mutation.py playbooks/filter_plugins/fleet.py # one
    cd .cache/mutation/playbooks_filter_plugins_fleet && mutmut show <mutant>   # what a survivor changed

A module's tests must import it under its dotted path (``playbooks.filter_plugins.fleet``, also for a file loaded
with importlib), or mutmut cannot tell which tests reach which function.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".cache" / "mutation"
THRESHOLD = 90.0

# Guarded module: the tests that must kill its mutants. One line per module.
GUARDED: dict[str, list[str]] = {
    "playbooks/filter_plugins/fleet.py": ["tests/test_fleet_playbooks.py"],
    "apps/claw/threadweaver/governance.py": [
        "tests/threadweaver/test_spend_concurrency.py",
        "tests/threadweaver/test_governance.py",
        "tests/threadweaver/test_reservations.py",
    ],
    # The spend ledger: the sums every cap is checked against (running totals kept by triggers), reservations.
    "apps/claw/threadweaver/ledger.py": [
        "tests/threadweaver/test_spend_totals.py",
        "tests/threadweaver/test_store.py",
        "tests/threadweaver/test_gateway.py",
        "tests/threadweaver/test_governance.py",
        "tests/threadweaver/test_reservations.py",
        "tests/threadweaver/test_spend_concurrency.py",
    ],
    "apps/claw/mcp/sandbox.py": [
        "tests/mcp/test_mcp_sandbox_ops.py",
        "tests/mcp/test_mcp_sandbox_escapes.py",
        "tests/mcp/test_mcp_sandbox_faults.py",
    ],
}

APPS = "apps/"

# Top-level entries that a test run never needs in its copy.
LEFT_OUT = {".git", ".venv", ".cache", ".pytest_cache", ".ruff_cache", "mutants"}


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def prepare(module: str, tests: list[str], keep: bool) -> Path:
    """The module's work directory: links to the repository, a pyproject.toml with its [tool.mutmut] table."""
    work = WORK / module.removesuffix(".py").replace("/", "_")
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    entries = sorted(path.name for path in REPO.iterdir() if path.name not in LEFT_OUT | {"pyproject.toml"})
    for name in entries:
        link = work / name
        if not link.is_symlink():
            link.symlink_to(REPO / name)
    # mutmut names a module by its path, less a leading src/: an apps/ module (imported as claw.…) is mutated
    # through a src link to apps/, so that its mutants are the claw package the tests import.
    if module.startswith(APPS):
        if not (work / "src").is_symlink():
            (work / "src").symlink_to(REPO / APPS.rstrip("/"))
        module = "src/" + module.removeprefix(APPS)
        entries = [*entries, "src"]
    project = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    if re.search(r"^\[tool\.mutmut\]", project, re.MULTILINE):
        raise SystemExit("pyproject.toml has a [tool.mutmut] table: guarded modules are listed in tools/mutation.py")
    settings = {
        "source_paths": _toml_list([module]),
        "pytest_add_cli_args_test_selection": _toml_list(tests),
        # The rest of the repository, for the tests that read it (tests/ and pyproject.toml are copied anyway).
        "also_copy": _toml_list([name for name in entries if name != "tests"]),
        "pytest_add_cli_args": _toml_list(["-p", "no:cacheprovider"]),
        "use_git_change_detection": "false",
    }
    table = "\n".join(f"{key} = {value}" for key, value in settings.items())
    (work / "pyproject.toml").write_text(f"{project}\n[tool.mutmut]\n{table}\n", encoding="utf-8")
    return work


def _changed_lines(shown: str) -> tuple[list[str], list[str]]:
    """The lines a mutant's diff (``mutmut show``) takes out and puts in."""
    lines = shown.splitlines()
    taken = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    put = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    return taken, put


def sql_case_survivors(work: Path, mutmut: str, env: dict[str, str]) -> list[str]:
    """Survivors that only change the letter case of SQL text (mutmut upper- and lower-cases every string):
    SQLite's keywords, table and column names ignore case, so no test can tell them apart. A string that is not
    SQL, or a literal value inside SQL ('partial'), is not such a change and stays counted."""
    meta = next((work / "mutants").rglob("*.meta"), None)
    if meta is None:
        return []
    verdicts = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
    equivalent = []
    for name in (name for name, code in verdicts.items() if code == 0):
        shown = subprocess.run([mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True).stdout
        taken, put = _changed_lines(shown)
        if taken and len(taken) == len(put) and all(map(is_sql_case_change, taken, put)):
            equivalent.append(name)
    return equivalent


_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|VALUES|WHERE|FROM|UNION|TRIGGER|GROUP BY)\b", re.I)
_QUOTED = re.compile(r"'[^']*'")


def is_sql_case_change(before: str, after: str) -> bool:
    """``after`` is ``before`` in other letter case, ``before`` holds SQL, and no quoted SQL value changed."""
    return (
        before != after
        and before.lower() == after.lower()
        and bool(_SQL.search(before))
        and _QUOTED.findall(before) == _QUOTED.findall(after)
    )


def run(module: str, tests: list[str], keep: bool, threshold: float, children: int) -> bool:
    work = prepare(module, tests, keep)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    done = subprocess.run([mutmut, "run", "--max-children", str(children)], cwd=work, env=env, check=False)
    if done.returncode != 0:
        print(f"{module}: mutmut failed (exit {done.returncode}); see above")
        return False
    subprocess.run([mutmut, "export-cicd-stats"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((work / "mutants/mutmut-cicd-stats.json").read_text(encoding="utf-8"))
    # mutmut's own score: a mutant that makes the tests time out is killed too; skipped ones are not counted.
    killed = stats["killed"] + stats["timeout"]
    equivalent = sql_case_survivors(work, mutmut, env)
    counted = stats["total"] - stats["skipped"] - len(equivalent)
    score = 100.0 * killed / counted if counted else 0.0
    elapsed = time.monotonic() - started
    verdict = "ok" if score >= threshold else f"FAIL (under {threshold:g}%)"
    left_out = f" ({len(equivalent)} equivalent: the case of SQL text)" if equivalent else ""
    print(f"{module}: {killed}/{counted} mutants killed{left_out}, {score:.1f}% in {elapsed:.0f} s: {verdict}")
    if score < threshold:
        subprocess.run([mutmut, "results"], cwd=work, env=env, check=False)
        print(f"Show one: cd {work.relative_to(REPO)} && {mutmut} show <name>")
    return score >= threshold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="guarded modules to test (default: all)")
    parser.add_argument("--keep", action="store_true", help="reuse the last run's verdicts")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="percent of mutants to kill")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    options = parser.parse_args()
    unknown = sorted(set(options.modules) - set(GUARDED))
    if unknown:
        parser.error(f"not guarded (tools/mutation.py GUARDED): {', '.join(unknown)}")
    modules = options.modules or list(GUARDED)
    results = [run(module, GUARDED[module], options.keep, options.threshold, options.children) for module in modules]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
