"""Pull mode on cluster c, after the waves (test_fleet.py): role pull on the node, then its service runs
ansible-pull of this repository at a pinned commit against the node itself and reports the result.

The node pulls the commit checked out here (HEAD), so a change must be committed to be pulled.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra

from tests.nodes import Run, run_playbook

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SETUP = PROJECT / "molecule" / "fleet" / "pull.yml"
REPO_ON_NODE = "/srv/claw.git"
RESULT = "/var/lib/claw/pull-result.json"


def node_c():
    return testinfra.get_host("nsenter://fleet-c")


@pytest.fixture(scope="module")
def pull_setup(tmp_path_factory) -> tuple[str, Run]:
    """This repository as a bare clone on fleet-c, and role pull applied there at HEAD."""
    commit = subprocess.check_output(["git", "-C", str(PROJECT), "rev-parse", "HEAD"], text=True).strip()
    bare = tmp_path_factory.mktemp("pull") / "claw.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(PROJECT), str(bare)], check=True)
    subprocess.run(["podman", "cp", str(bare), f"fleet-c:{REPO_ON_NODE}"], check=True)
    return commit, run_playbook(SETUP, {"pull_repo_url": REPO_ON_NODE, "pull_ref": commit})


def _pull_once(host) -> tuple[int, dict, str]:
    """Start the oneshot service (systemctl returns when the run has ended): its exit, the result, its journal."""
    started = host.run("systemctl start claw-pull.service")
    result = json.loads(host.check_output(f"cat {RESULT}"))
    journal = host.check_output("journalctl -u claw-pull.service -n 60 --no-pager")
    return started.rc, result, journal


def test_role_pull_installs_ansible_and_the_timer(pull_setup):
    commit, setup = pull_setup
    assert setup.rc == 0, setup.output[-3000:]
    c = node_c()
    assert c.check_output("/opt/claw-pull/venv/bin/ansible-pull --version").startswith("ansible-pull [core ")
    assert c.check_output("git -C /opt/claw-pull/checkout rev-parse HEAD") == commit
    assert c.service("claw-pull.timer").is_enabled and c.service("claw-pull.timer").is_running
    assert c.check_output("systemctl show -P NextElapseUSecRealtime claw-pull.timer") != ""


def test_a_pull_run_applies_the_pinned_commit_and_reports_it(pull_setup):
    commit, _ = pull_setup
    c = node_c()
    apps = c.check_output("readlink /opt/claw/current")
    rc, result, journal = _pull_once(c)
    assert rc == 0, journal
    assert result["rc"] == 0 and result["commit"] == commit and result["ref"] == commit, result
    # Gated (the light gate of its pulled inventory) and reported; the journal opened before the run is closed.
    assert result["outcome"] in ("updated", "unchanged") and result["revision"] == commit, result
    journal = json.loads(c.check_output("cat /var/lib/claw/update-journal.json"))
    assert journal["status"] == "closed" and journal["result"] == "applied", journal
    assert result["playbook"] == "molecule/fleet/pull/site.yml" and result["duration_s"] >= 0
    # The pulled playbook ran on the node: its own run record, and the node's apps are as they were.
    record = json.loads(c.check_output("cat /var/lib/claw/last-update.json"))
    assert record["playbook"] == "molecule/fleet/pull/site.yml", record
    assert c.check_output("readlink /opt/claw/current") == apps


def test_a_failed_pull_run_is_reported(pull_setup):
    commit, _ = pull_setup
    setup = run_playbook(
        SETUP, {"pull_repo_url": REPO_ON_NODE, "pull_ref": commit, "pull_playbook": "molecule/fleet/pull/none.yml"}
    )
    assert setup.rc == 0, setup.output[-3000:]
    c = node_c()
    rc, result, journal = _pull_once(c)
    assert rc != 0
    assert result["rc"] != 0 and result["commit"] == commit and result["playbook"] == "molecule/fleet/pull/none.yml"
    # A failed pulled run is rolled back to the journal's releases (nothing had switched) and says why.
    assert result["outcome"] == "rolled back" and "none.yml" in result["message"], result
    assert "none.yml" in journal, journal
    assert c.service("claw-pull.service").is_running is False
