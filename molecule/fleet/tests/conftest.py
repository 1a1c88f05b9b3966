"""Fixtures of the fleet scenario: the three one-node clusters, and one update run the tests look at."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra

from tests.nodes import Run, run_playbook

PLAYBOOKS = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3])) / "playbooks"
CLUSTERS = ("a", "b", "c")


@dataclass
class State:
    """What a node shows of its claw apps: the current release, the LED daemon's unit and process, the records."""

    current: str
    releases: list[str]
    exec_start: str
    process: str
    active: str
    bom: dict
    last_update: dict


def node(cluster: str):
    return testinfra.get_host(f"nsenter://fleet-{cluster}")


def state(cluster: str) -> State:
    host = node(cluster)
    pid = host.check_output("systemctl show -P MainPID claw-leds.service")
    return State(
        current=host.check_output("readlink /opt/claw/current"),
        releases=sorted(host.check_output("ls /opt/claw/releases").split()),
        exec_start=host.check_output("grep ^ExecStart= /etc/systemd/system/claw-leds.service"),
        process=host.check_output(f"tr '\\0' ' ' < /proc/{pid}/cmdline") if pid != "0" else "",
        active=host.check_output("systemctl is-active claw-leds.service || true"),
        bom=json.loads(host.check_output("cat /var/lib/claw/bom.json")),
        last_update=json.loads(host.check_output("cat /var/lib/claw/last-update.json")),
    )


@dataclass
class Update:
    before: dict[str, State]
    run: Run
    after: dict[str, State]


@pytest.fixture(scope="session")
def update() -> Update:
    """playbooks/update.yml to the second release, once: a, then b (refused, rolled back), never c."""
    before = {cluster: state(cluster) for cluster in CLUSTERS}
    run = run_playbook(PLAYBOOKS / "update.yml", {"fleet_test_release": "v2"})
    return Update(before, run, {cluster: state(cluster) for cluster in CLUSTERS})


@pytest.fixture(scope="session")
def rollback(update: Update) -> tuple[Run, State]:
    """playbooks/rollback.yml for cluster a, after the update."""
    run = run_playbook(PLAYBOOKS / "rollback.yml", {"rollback_cluster": "a"})
    return run, state("a")
