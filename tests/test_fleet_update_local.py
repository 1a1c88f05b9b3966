"""playbooks/update.yml and rollback.yml end to end on this machine, with stand-ins for nodes and releases.

Three "clusters" of one host each run over the local connection; the release component lives under tmp_path and
the wave's tasks only switch its `current` link to a new release. Cluster b's acceptance check refuses the new
release: the canary keeps it, b is switched back and the run stops before c. No unit is touched (none names
these paths) and nothing outside tmp_path is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fleet_stand_in

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="the records are written owned by root"),
]


def _play(root: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(root / "inventory.yml")]
    command += [str(REPO / "playbooks" / playbook), *extra]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def _state(root: Path, host: str) -> tuple[str, dict, dict]:
    state = root / host / "state"
    return (
        str((root / host / "app/current").readlink()),
        json.loads((state / "bom.json").read_text()),
        json.loads((state / "last-update.json").read_text()),
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    # The appliance-wide defaults the roles derive from, as inventory group_vars.
    return fleet_stand_in.refusing_b(tmp_path, fleet_stand_in.SWITCH_APP, group_vars=REPO / "playbooks" / "group_vars")


def test_a_failed_wave_is_rolled_back_and_stops_the_line(fleet: Path):
    # The first record (what site.yml writes last).
    first = subprocess.run(
        [str(Path(sys.executable).with_name("ansible")), "-i", str(fleet / "inventory.yml"), "claw", "-m",
         "ansible.builtin.include_role", "-a", "name=release"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    before = {host: _state(fleet, host) for host in fleet_stand_in.HOSTS}
    assert before["node-a"][1]["components"]["claw_apps"]["release"] == "1.0"

    run = _play(fleet, "update.yml")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Wave 1: a" in out and "Wave 3: c" in out
    assert "Cluster b failed its update and was rolled back" in " ".join(out.split())

    current, bom, record = _state(fleet, "node-a")
    assert current.endswith("/releases/2.0")
    assert bom["components"]["claw_apps"]["release"] == "2.0" and bom["components"]["claw_apps"]["previous"] == "1.0"
    assert record["playbook"] == "playbooks/update.yml" and record["result"] == "applied"

    current, bom, record = _state(fleet, "node-b")
    assert current.endswith("/releases/1.0")
    assert (fleet / "node-b/app/releases/2.0").is_dir()
    assert bom["components"]["claw_apps"]["release"] == "1.0" and record["result"] == "rolled back"

    assert _state(fleet, "node-c") == before["node-c"]
    assert not (fleet / "node-c/app/releases/2.0").exists()

    # On demand: cluster a back to the release before its last change.
    run = _play(fleet, "rollback.yml", "-e", "rollback_cluster=a")
    assert run.returncode == 0, run.stdout + run.stderr
    current, bom, record = _state(fleet, "node-a")
    assert current.endswith("/releases/1.0")
    assert bom["components"]["claw_apps"]["previous"] == "2.0"
    assert record["playbook"] == "playbooks/rollback.yml" and record["result"] == "rollback"
