"""Shared by the Molecule scenarios' testinfra suites (each scenario's conftest imports the fixtures from
``tests.nodes``: pytest puts the repository root on ``sys.path`` through pyproject's ``pythonpath``).

Molecule hands testinfra one Ansible-backed `host` per node; running every command through
Ansible costs a second or more, so `node` talks to the same container directly, through nsenter:
`testinfra.get_host("nsenter://NAME")` (the backend below; `podman exec` costs about 0.5 s of CPU a command).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import testinfra
import testinfra.backend
from testinfra.backend.base import BaseBackend, CommandResult


def _connection_plugin() -> ModuleType:
    """The scenarios' Ansible connection plugin (molecule/shared/plugins/connection/podman_nsenter.py), loaded by
    file: an Ansible plugin folder is not a package, and one way into a container serves Ansible and testinfra."""
    path = Path(__file__).resolve().parents[1] / "molecule" / "shared" / "plugins" / "connection" / "podman_nsenter.py"
    spec = importlib.util.spec_from_file_location("podman_nsenter", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Container = _connection_plugin().Container


class NsenterBackend(BaseBackend):
    """testinfra commands in a local podman container's namespaces (nsenter://NAME)."""

    NAME = "nsenter"

    def __init__(self, name: str, *args, **kwargs) -> None:
        self.container = Container(name)
        super().__init__(name, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs) -> CommandResult:
        if not Path(f"/proc/{self.container.pid}").exists():  # the container was restarted
            self.container = Container(self.container.name)
        cmd = self.get_command(command, *args)
        done = subprocess.run(self.container.argv(cmd), capture_output=True, check=False)
        return self.result(done.returncode, self.encode(cmd), done.stdout, done.stderr)


testinfra.backend.BACKENDS[NsenterBackend.NAME] = f"{__name__}.{NsenterBackend.__name__}"


@pytest.fixture
def node(host):
    return testinfra.get_host(f"nsenter://{host.backend.get_hostname()}")


def busctl(node, *args: str):
    """systemd's D-Bus answer as data (busctl --json=short)."""
    return json.loads(node.check_output("busctl --json=short " + " ".join(args)))["data"]


SYSTEMD = "org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager"


# Negative checks: run the scenario's converge playbook again with bad variables.
RECAP = re.compile(r"^\S+\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+\S+\s+failed=(?P<failed>\d+)", re.M)


@dataclass
class Run:
    rc: int
    output: str
    changed: int
    failed: int

    @property
    def text(self) -> str:
        """The output with every run of whitespace made one space (messages may wrap)."""
        return " ".join(self.output.split())


def _ansible_playbook() -> str:
    beside = Path(sys.executable).with_name("ansible-playbook")
    if beside.exists():
        return str(beside)
    return shutil.which("ansible-playbook") or "ansible-playbook"


def run_playbook(playbook: Path, extra_vars: dict, tags: str | None = None, timeout: float = 600) -> Run:
    """ansible-playbook against the scenario's inventory, in molecule's own environment. Its output also goes to
    <ephemeral dir>/<playbook>.log as it runs (tail it to follow a long run); a run past `timeout` seconds is
    killed and fails with the end of its output."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    env = {
        **os.environ,
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    }
    argv = [_ansible_playbook(), "-i", str(inventory), str(playbook), "--extra-vars", json.dumps(extra_vars)]
    if tags:
        argv += ["--tags", tags]
    log = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", inventory)) / f"{playbook.stem}.log"
    with log.open("w+", encoding="utf-8") as out:
        try:
            returncode = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            out.seek(0)
            raise AssertionError(
                f"{playbook.name} ran past {timeout:g} s; its output ended with:\n{out.read()[-6000:]}"
            ) from None
        out.seek(0)
        output = out.read()
    recaps = [(int(m["changed"]), int(m["failed"])) for m in RECAP.finditer(output)]
    assert recaps, f"no PLAY RECAP in the output:\n{output}"
    return Run(returncode, output, sum(c for c, _ in recaps), sum(f for _, f in recaps))


def scenario_playbook(name: str) -> Callable[[dict], Run]:
    """Run one of the scenario's playbooks with extra variables."""
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return lambda extra_vars: run_playbook(scenario / name, extra_vars)


@pytest.fixture
def converge() -> Callable[[dict], Run]:
    """Run the scenario's converge.yml again with extra variables."""
    return scenario_playbook("converge.yml")


# ThreadWeaver's console API as the two-node scenario's nodes reach it.
CONSOLE = "https://molecule-claw:8600"
CONSOLE_CA = "/etc/claw/pki/ca.crt"
# Runs on a node with the standard library only: one JSON request, verified against the cluster CA (or not, with
# an empty CA path: an outsider has no CA and only checks that it is refused). Prints the status and the body.
_CONSOLE_CLIENT = r"""
import json, ssl, sys, urllib.error, urllib.request
method, url, cafile, token, body = sys.argv[1:6]
context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
req = urllib.request.Request(url, data=body.encode() if body else None, headers=headers, method=method)
try:
    with urllib.request.urlopen(req, context=context, timeout=300) as resp:
        print(resp.status); print(resp.read().decode())
except urllib.error.HTTPError as err:
    print(err.code); print(err.read().decode())
"""


def console_call(
    node,
    method: str,
    path: str,
    body: dict | None = None,
    token: str = "",
    cafile: str = CONSOLE_CA,
    base: str = CONSOLE,
):
    """One request to the console API (at ``base``) from ``node``: (status, parsed JSON body or None)."""
    result = node.run(
        "python3 -c %s %s %s %s %s %s",
        _CONSOLE_CLIENT,
        method,
        base + path,
        cafile,
        token,
        json.dumps(body) if body else "",
    )
    assert result.rc == 0, result.stderr
    status, text = result.stdout.split("\n", 1)
    return int(status), (json.loads(text) if text.strip() else None)


def console_login(claw, base: str = CONSOLE) -> str:
    """A console session token, logged in with the appliance's own password."""
    password = claw.check_output("cat /etc/threadweaver/console-password").strip()
    status, body = console_call(claw, "POST", "/login", {"password": password}, base=base)
    assert status == 200, body
    return body["token"]


def thread_reply(claw, model: str, title: str, base: str = CONSOLE) -> dict:
    """A new console thread on crush's ``model`` answering "Say hello.": the turn's reply, checked to come from crush
    with tokens."""
    token = console_login(claw, base=base)
    status, thread = console_call(
        claw, "POST", "/threads", {"provider": "crush", "model": model, "title": title}, token, base=base
    )
    assert status == 201, thread
    status, turn = console_call(
        claw, "POST", f"/threads/{thread['id']}/messages", {"content": "Say hello."}, token, base=base
    )
    assert status == 200, turn
    assert turn["reply"]["provider"] == "crush" and turn["reply"]["tokens_out"] > 0, turn
    return turn["reply"]


def openclaw_reply(claw, model: str) -> dict:
    """OpenClaw's answer to "Say hello." from crush's ``model`` through its gateway, checked to be non-empty."""
    result = claw.run(f"openclaw infer model run --gateway --json --model crush/{model} --prompt 'Say hello.'")
    assert result.rc == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout[result.stdout.index("{") :])
    assert answer["ok"] is True and answer["provider"] == "crush", answer
    assert answer["outputs"][0]["text"].strip()
    return answer


# One TCP connection attempt, run on a node or in a test's namespace with the system's python3 (stdlib only):
#   python3 -c CONNECT_ATTEMPT ADDRESS [TIMEOUT_S [REFUSED_WITHIN_S]]
# prints "refused" when it failed within REFUSED_WITHIN_S (a firewall's reject), "left" otherwise (it went out:
# answered, timed out unanswered, or failed later).
CONNECT_ATTEMPT = r"""
import socket, sys, time
timeout, within = (float(sys.argv[2]) if len(sys.argv) > 2 else 3), (float(sys.argv[3]) if len(sys.argv) > 3 else 1)
start = time.monotonic()
s = socket.socket(); s.settimeout(timeout)
try:
    s.connect((sys.argv[1], 443))
except OSError:
    pass
print("refused" if time.monotonic() - start < within else "left")
"""
