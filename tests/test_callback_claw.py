"""plugins/callback/claw.py through a real ansible-playbook with the repository's ansible.cfg: a failed run ends
with a summary of what failed where and how to read its logs, and retried tasks show progress."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A role that ships a unit named after itself: a failure in it points at that unit's journal.
ROLE_TASKS = """
- name: Wait for the build to finish
  ansible.builtin.shell: >-
    n=$(( $(cat {{ counter }} 2>/dev/null || echo 0) + 1 )); echo $n > {{ counter }};
    echo "[ 4${n}%] Building CXX object ggml.c.o"; test $n -ge 3
  register: build
  until: build.rc == 0
  retries: 5
  delay: 1
  changed_when: false

- name: Start the engine
  ansible.builtin.command:
    argv: [sh, -c, 'echo "engine: port 8080 in use" >&2; exit 3']
  changed_when: false
"""

PLAY = """
- name: Provision the probe
  hosts: all
  gather_facts: false
  vars:
    counter: "{{ playbook_dir }}/counter"
  roles:
    - role: engine
"""

PING = """
- name: Reach the node
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def ansible_playbook(tmp_path: Path, inventory: str, play: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "inventory").write_text(inventory)
    (tmp_path / "play.yml").write_text(play)
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i", str(tmp_path / "inventory"), str(tmp_path / "play.yml"),
        "-e", f"ansible_python_interpreter={sys.executable}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def engine_role(tmp_path: Path) -> Path:
    role = tmp_path / "roles" / "engine"
    (role / "tasks").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "templates" / "engine.service.j2").write_text("[Service]\nExecStart=/bin/true\n")
    return role


@pytest.mark.ansible
def test_failure_summary_and_retry_progress(tmp_path, engine_role):
    inventory = "probe ansible_connection=local appliance_log_command='podman exec probe journalctl {unit_args} -n 5'\n"
    result = ansible_playbook(tmp_path, inventory, PLAY)
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout

    # Progress while the build is polled: attempt, elapsed time and the build's last line; no "FAILED".
    assert "FAILED - RETRYING" not in out
    progress = re.findall(
        r"^\[probe\] still running: Wait for the build to finish \(attempt (\d) of 6, \d+s\): (.*)$", out, re.M
    )
    assert progress == [("1", "[ 41%] Building CXX object ggml.c.o"), ("2", "[ 42%] Building CXX object ggml.c.o")], out

    # The output ends with the summary: node, play, role, task, message with stderr, logs, re-run.
    summary = out[out.index("FAILED ON 1 NODE") :].splitlines()
    assert summary[1:] == [
        "  node:  probe",
        "  play:  Provision the probe",
        "  role:  engine",
        "  task:  Start the engine",
        "  error: non-zero return code (rc=3)",
        "         stderr:",
        "           engine: port 8080 in use",
        "  logs:  podman exec probe journalctl -u engine -n 5",
        "",
        f"Fix the cause, then re-run: ansible-playbook -i {tmp_path / 'inventory'} {tmp_path / 'play.yml'} "
        f"-e ansible_python_interpreter={sys.executable}",
    ]
    assert out.index("PLAY RECAP") < out.index("FAILED ON 1 NODE")


@pytest.mark.ansible
def test_unreachable_node_and_default_log_command(tmp_path):
    inventory = "board.example ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1 ansible_user=pi\n"
    out = ansible_playbook(tmp_path, inventory, PING).stdout
    summary = out[out.index("FAILED ON 1 NODE") :]
    assert "  node:  board.example (UNREACHABLE)\n" in summary
    assert "  task:  Ping\n" in summary
    assert "port 1: Connection refused" in summary
    assert "  logs:  ssh -p 1 pi@127.0.0.1 sudo journalctl -b -n 100 --no-pager\n" in summary


@pytest.mark.ansible
def test_success_prints_no_summary(tmp_path):
    play = (
        "- name: Fine\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n"
    )
    result = ansible_playbook(tmp_path, "probe ansible_connection=local\n", play)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().splitlines()[-1].startswith("probe "), result.stdout  # the recap line is last
    assert "FAILED" not in result.stdout


@pytest.mark.ansible
def test_demo_inventory_names_the_node_containers(tmp_path):
    """inventory/demo's appliance_log_command: podman exec into claw/crush; the controller (demo.yml) directly."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(REPO / "inventory/demo")])
    manager = VariableManager(loader=loader, inventory=inventory)
    commands = {}
    for name in ("claw.demo", "crush.demo", "localhost"):
        host = inventory.get_host(name)
        variables = manager.get_vars(host=host)
        commands[name] = Templar(loader=loader, variables=variables).template(variables["appliance_log_command"])
    assert commands == {
        "claw.demo": "podman exec claw journalctl {unit_args} -n 100 --no-pager",
        "crush.demo": "podman exec crush journalctl {unit_args} -n 100 --no-pager",
        "localhost": "journalctl {unit_args} -n 100 --no-pager",
    }
