"""Shared fixtures: the repository root and a runner for ansible-playbook on the controller."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def run_playbook(tmp_path: Path):
    """Run a one-play playbook against localhost in check mode; nothing on the host changes."""

    def run(play: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess[str]:
        import json

        playbook = tmp_path / "play.yml"
        playbook.write_text(play)
        command = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i", "localhost,", "-c", "local", "--check", str(playbook),
            "-e", f"ansible_python_interpreter={sys.executable}",
        ]  # fmt: skip
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    return run
