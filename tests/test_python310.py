"""The node-side Python runs on JetPack 6's Python 3.10: the lint's vermin step (Makefile `lint`) passes on it and
refuses the usual 3.11-only uses, so the step itself can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ELEVEN_ONLY = {
    "tomllib": "import tomllib\n",
    "datetime.UTC": "from datetime import UTC\n",
    "typing.Self": "from typing import Self\n",
    "enum.StrEnum": "from enum import StrEnum\n",
    "asyncio.timeout": "import asyncio\n\n\nasync def f():\n    async with asyncio.timeout(1):\n        pass\n",
    "except*": "try:\n    pass\nexcept* ValueError:\n    pass\n",
}


def lint_command() -> list[str]:
    """The Makefile's vermin line, as `make lint` runs it."""
    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if line.strip().startswith("vermin "))
    return line.split()


def vermin(*paths: str) -> subprocess.CompletedProcess:
    if shutil.which("vermin") is None:
        pytest.fail("vermin is missing: it is in the dev extra (make venv)", pytrace=False)
    options = [word for word in lint_command() if word.startswith("-")]
    return subprocess.run(["vermin", *options, *paths], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_node_side_python_needs_no_more_than_3_10():
    paths = [word for word in lint_command()[1:] if not word.startswith("-")]
    assert "apps" in paths
    expanded = [str(p.relative_to(REPO)) for word in paths for p in sorted(REPO.glob(word))]
    done = vermin(*expanded)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("feature", sorted(ELEVEN_ONLY))
def test_a_3_11_only_use_fails_the_step(tmp_path, feature):
    source = tmp_path / "node_side.py"
    source.write_text(ELEVEN_ONLY[feature])
    done = vermin(str(source))
    assert done.returncode != 0, f"{feature} passed: {done.stdout}"
    assert re.search(r"3\.11", done.stdout), done.stdout
