"""Fixtures of the upgrade scenario: the node at version N, after playbooks/update.yml (N+1), after rollback.yml.

The versions come from the repository: N from converge.yml's play variables, N+1 from the roles' defaults.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
import yaml

from tests.nodes import Run, run_playbook

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SCENARIO = Path(__file__).resolve().parents[1]
NODE = "upgrade-claw"
# The components installed side by side: name to the root of its releases.
ROOTS = {"claw_apps": "/opt/claw", "nodejs": "/opt/nodejs", "openclaw": "/opt/openclaw"}
# The openclaw command as the gateway's unit runs it (its PATH: the current Node.js release).
# An update installs a Node.js, an OpenClaw (npm ci) and a claw apps release with both health gates: well over
# ten minutes on a loaded 2-core host.
UPDATE_TIMEOUT = 2400
OPENCLAW = "env PATH=/opt/nodejs/current/bin:/usr/bin:/bin /opt/openclaw/current/node_modules/.bin/openclaw"


@dataclass(frozen=True)
class Versions:
    """What a version of the appliance pins: Node.js, OpenClaw, and the claw apps' package version."""

    nodejs: str
    openclaw: str
    claw_apps: str


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _pyproject_version() -> str:
    for line in (PROJECT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


@pytest.fixture(scope="session")
def version_n() -> Versions:
    play_vars = _yaml(SCENARIO / "converge.yml")[0]["vars"]
    return Versions(str(play_vars["nodejs_version"]), str(play_vars["openclaw_version"]), _pyproject_version())


@pytest.fixture(scope="session")
def version_n1() -> Versions:
    nodejs = _yaml(PROJECT / "roles/nodejs/defaults/main.yml")["nodejs_version"]
    openclaw = _yaml(PROJECT / "roles/openclaw/defaults/main.yml")["openclaw_version"]
    # ../shared/release.yml: this checkout with <version>.post1.
    return Versions(str(nodejs), str(openclaw), _pyproject_version() + ".post1")


@dataclass
class State:
    """What the node shows: the releases in use and on disk, the running processes, the gateway, the records."""

    current: dict[str, str]
    releases: dict[str, list[str]]
    node_version: str
    openclaw_version: str
    claw_version: str
    gateway_active: str
    gateway_pid: str
    gateway_exe: str
    gateway_ready: dict
    gateway_version: str
    leds_exec_start: str
    leds_process: str
    leds_active: str
    bom: dict
    last_update: dict
    status: dict


def node():
    return testinfra.get_host(f"nsenter://{NODE}")


def _http_json(host, url: str) -> dict:
    """GET a URL on the node (its Python; the base image has no curl), retried while the service starts."""
    script = (
        "import json, sys, time, urllib.request\n"
        "for _ in range(60):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen({url!r}, timeout=5).read().decode()); sys.exit(0)\n"
        "    except OSError:\n"
        "        time.sleep(2)\n"
        "sys.exit(1)\n"
    )
    result = host.run("python3 -c " + shlex.quote(script))
    return json.loads(result.stdout) if result.rc == 0 else {"error": result.stderr}


def _gateway_version(host) -> str:
    """The version the running gateway reports over its RPC (the operators' openclaw command, with its token)."""
    result = host.run("openclaw gateway status --json")
    try:
        return str(json.loads(result.stdout)["rpc"]["server"]["version"])
    except (ValueError, KeyError, TypeError):
        return f"unknown: rc {result.rc}: {result.stdout[-500:]} {result.stderr[-500:]}"


def state() -> State:
    host = node()
    gateway_pid = host.check_output("systemctl show -P MainPID openclaw.service")
    leds_pid = host.check_output("systemctl show -P MainPID claw-leds.service")
    status = host.run("claw status --json --no-leds --timeout 2 --bom-file /var/lib/claw/bom.json")
    return State(
        current={name: host.check_output(f"readlink {root}/current") for name, root in ROOTS.items()},
        releases={name: sorted(host.check_output(f"ls {root}/releases").split()) for name, root in ROOTS.items()},
        node_version=host.check_output("/opt/nodejs/current/bin/node --version"),
        openclaw_version=host.check_output(f"{OPENCLAW} --version"),
        claw_version=host.check_output("claw --version"),
        gateway_active=host.check_output("systemctl is-active openclaw.service || true"),
        gateway_pid=gateway_pid,
        # As the gateway's own user: podman exec's root lacks CAP_SYS_PTRACE, which another user's exe link needs.
        gateway_exe=host.check_output(f"runuser -u openclaw -- readlink /proc/{gateway_pid}/exe")
        if gateway_pid != "0"
        else "",
        gateway_ready=_http_json(host, "http://127.0.0.1:18789/readyz"),
        gateway_version=_gateway_version(host),
        leds_exec_start=host.check_output("grep ^ExecStart= /etc/systemd/system/claw-leds.service"),
        leds_process=host.check_output(f"tr '\\0' ' ' < /proc/{leds_pid}/cmdline") if leds_pid != "0" else "",
        leds_active=host.check_output("systemctl is-active claw-leds.service || true"),
        bom=json.loads(host.check_output("cat /var/lib/claw/bom.json")),
        last_update=json.loads(host.check_output("cat /var/lib/claw/last-update.json")),
        status=json.loads(status.stdout) if status.stdout.strip() else {"error": status.stderr},
    )


@dataclass
class Step:
    run: Run | None
    state: State


@pytest.fixture(scope="session")
def at_n() -> Step:
    """The node as converge.yml left it: version N."""
    return Step(None, state())


@pytest.fixture(scope="session")
def at_n1(at_n: Step) -> Step:
    """playbooks/update.yml with the scenario's inventory: version N+1."""
    run = run_playbook(PROJECT / "playbooks/update.yml", {}, timeout=UPDATE_TIMEOUT)
    return Step(run, state())


@pytest.fixture(scope="session")
def back_at_n(at_n1: Step) -> Step:
    """playbooks/rollback.yml after the update: version N again."""
    run = run_playbook(PROJECT / "playbooks/rollback.yml", {}, timeout=UPDATE_TIMEOUT)
    return Step(run, state())
