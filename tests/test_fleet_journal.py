"""The update journal (role release): a node that drops off mid-wave and a controller that dies mid-wave.

Four one-host "clusters" run over the local connection, as in tests/test_fleet_update_local.py; each has two
stand-in components installed side by side under tmp_path: ``app`` (like Node.js) and ``tool`` (like OpenClaw,
with a state directory a new release migrates, saved per release before a switch). Before the update both are
on 1.0; ``tool``'s bill of materials names 0.9 as the release before it (its state for 0.9 is saved), which is
where a rollback from the bill of materials would wrongly take it. A wave switches ``app`` to 2.0, then ``tool``
to 2.0 (saving its state first and "migrating" it after).

(a) waves [a] [b c] [d], b unreachable right after its first switch: the run stops after that wave, d is never
    touched, the report names b unreachable; rollback.yml later rolls b back from its journal.
(b) the controller killed (SIGKILL) between the two switches: rollback.yml restores exactly the releases and the
    state in use before the update (not the bill of materials' `previous`).
(c) the same interruption, then the boot-time unit's command, run by a Python without Ansible: the node rolls
    itself back from its journal with no controller.
(d) the same interruption, then the next update run: the node is rolled back from its journal first, then
    updated and its journal closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import fleet_stand_in

REPO = Path(__file__).resolve().parent.parent
HOSTS = ("node-a", "node-b", "node-c", "node-d")

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="the records are written owned by root"),
]

WAVE = """\
- name: Install release 2.0 of app
  ansible.builtin.file:
    path: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/releases/2.0"
    state: directory
    mode: "0755"

- name: Switch app to 2.0
  ansible.builtin.file:
    src: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/releases/2.0"
    dest: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/current"
    state: link
    force: true
  register: __test_app_switch

- name: Record the switch in the update journal (as the roles do after theirs)
  ansible.builtin.include_role:
    name: release
    tasks_from: record_switch
  when: __test_app_switch is changed

- name: Lose the connection to the nodes named in fleet_test_unreachable (a closed SSH port)
  ansible.builtin.set_fact:
    ansible_connection: ssh
    ansible_host: 127.0.0.1
    ansible_port: 9
    ansible_ssh_common_args: -o ConnectTimeout=5 -o ControlMaster=no
  when: inventory_hostname in fleet_test_unreachable | default([])

- name: Between the two switches, tell the test and wait to be killed
  when: fleet_test_pause | default(false) | bool
  block:
    - name: Tell the test
      ansible.builtin.copy:
        content: "between switches\\n"
        dest: "{{ fleet_test_root }}/paused"
        mode: "0644"

    - name: Wait
      ansible.builtin.command: sleep 300
      changed_when: false

- name: Install release 2.0 of tool
  ansible.builtin.file:
    path: "{{ fleet_test_root }}/{{ inventory_hostname }}/tool/releases/2.0"
    state: directory
    mode: "0755"

- name: Save tool's state for the release in use
  ansible.builtin.include_role:
    name: release
    tasks_from: save_state
  vars:
    release_save_component: tool
    release_save_release: "1.0"

- name: Switch tool to 2.0
  ansible.builtin.file:
    src: "{{ fleet_test_root }}/{{ inventory_hostname }}/tool/releases/2.0"
    dest: "{{ fleet_test_root }}/{{ inventory_hostname }}/tool/current"
    state: link
    force: true
  register: __test_tool_switch

- name: Record that switch too
  ansible.builtin.include_role:
    name: release
    tasks_from: record_switch
  when: __test_tool_switch is changed

- name: Migrate tool's state as its new release does on first start
  ansible.builtin.copy:
    content: "schema 2.0\\n"
    dest: "{{ fleet_test_root }}/{{ inventory_hostname }}/tool-state/db"
    mode: "0644"
"""


def _inventory(root: Path) -> dict:
    node = fleet_stand_in.NODE
    node_vars = {
        "release_components": [
            {"name": "app", "root": f"{node}/app", "units": []},
            {"name": "tool", "root": f"{node}/tool", "units": [], "state": [f"{node}/tool-state"]},
        ],
        "release_unit_dir": f"{node}/units",
        "release_libexec_dir": f"{node}/libexec",
    }
    return fleet_stand_in.inventory(
        root, HOSTS, node_vars, fleet_waves=[["a"], ["b", "c"], ["d"]], fleet_report=str(root / "report.json")
    )


def _env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}


def _command(root: Path, playbook: str, *extra: str) -> list[str]:
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(root / "inventory.yml")]
    return [*command, str(REPO / "playbooks" / playbook), *extra]


def _play(root: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(root, playbook, *extra), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400, check=False
    )


def _current(root: Path, host: str, component: str) -> str:
    return (root / host / component / "current").readlink().name


def _journal(root: Path, host: str) -> dict:
    return json.loads((root / host / "state/update-journal.json").read_text())


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    fleet_stand_in.write(tmp_path, _inventory(tmp_path), WAVE, group_vars=REPO / "playbooks" / "group_vars")
    for host in HOSTS:
        node = tmp_path / host
        for component, releases in (("app", ["1.0"]), ("tool", ["0.9", "1.0"])):
            for release in releases:
                (node / component / "releases" / release).mkdir(parents=True)
            (node / component / "current").symlink_to(node / component / "releases/1.0")
        (node / "tool-state").mkdir()
        (node / "units").mkdir()  # /etc/systemd/system
        (node / "tool-state/db").write_text("schema 1.0\n")
        # What tool 0.9 had before the update that brought 1.0 (state/<release>/<path with __>).
        saved = node / "tool/state/0.9" / str(node / "tool-state").strip("/").replace("/", "__")
        saved.mkdir(parents=True)
        (saved / "db").write_text("schema 0.9\n")
        # The bill of materials of the last successful run: tool came from 0.9.
        (node / "state").mkdir()
        bom = {"components": {"app": {"release": "1.0", "previous": ""}, "tool": {"release": "1.0", "previous": "0.9"}}}
        (node / "state/bom.json").write_text(json.dumps(bom))
        (node / "state/last-update.json").write_text(json.dumps({"playbook": "earlier", "result": "applied"}))
    return tmp_path


def _interrupt(fleet: Path) -> None:
    """Run update.yml on cluster a only and SIGKILL the controller between app's switch and tool's."""
    command = _command(fleet, "update.yml", "--limit", "cluster_a", "-e", '{"fleet_waves": [["a"]]}')
    command += ["-e", "fleet_test_pause=true"]
    process = subprocess.Popen(
        command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not (fleet / "paused").exists():
            assert process.poll() is None, "the update ended before reaching the pause"
            assert time.monotonic() < deadline, "the update never reached the pause"
            time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the workers it left behind (the `sleep`)
    assert _current(fleet, "node-a", "app") == "2.0"
    assert _current(fleet, "node-a", "tool") == "1.0"


def _assert_back_before_the_update(fleet: Path, host: str) -> None:
    assert _current(fleet, host, "app") == "1.0"
    assert _current(fleet, host, "tool") == "1.0", "tool was not switched: it must stay on 1.0, not go to 0.9"
    assert (fleet / host / "tool-state/db").read_text() == "schema 1.0\n", "tool's state must be the one in use"
    assert (fleet / host / "app/releases/2.0").is_dir()


def test_a_node_lost_mid_wave_stops_the_run_and_is_rolled_back_at_the_next_contact(fleet: Path):
    run = _play(fleet, "update.yml", "-e", '{"fleet_test_unreachable": ["node-b"]}')
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "UNREACHABLE" in out, out

    # a (the canary) and c (b's wave companion) keep the update and closed their journals.
    for host in ("node-a", "node-c"):
        assert (_current(fleet, host, "app"), _current(fleet, host, "tool")) == ("2.0", "2.0"), out
        journal = _journal(fleet, host)
        assert journal["status"] == "closed" and journal["result"] == "applied", journal
    # b: switched, then lost; its journal stays open with the releases before the update.
    assert _current(fleet, "node-b", "app") == "2.0"
    journal = _journal(fleet, "node-b")
    assert journal["status"] == "open", journal
    assert journal["snapshot"] == {"app": "1.0", "tool": "1.0"}
    assert [(s["component"], Path(s["to"]).name) for s in journal["switches"]] == [("app", "2.0")]
    # d: never touched.
    assert not (fleet / "node-d/app/releases/2.0").exists(), out
    assert not (fleet / "node-d/state/update-journal.json").exists()
    assert json.loads((fleet / "node-d/state/last-update.json").read_text())["playbook"] == "earlier"

    report = json.loads((fleet / "report.json").read_text())
    outcomes = {name: cluster["outcome"] for name, cluster in report["clusters"].items()}
    assert outcomes == {"a": "updated", "b": "unreachable", "c": "updated", "d": "not started"}, report
    assert report["clusters"]["b"]["hosts"] == {"node-b": "unreachable"}
    assert report["result"] == "stopped", report

    # The next contact (b reachable again): rollback.yml goes back to the journal's releases, not bom.json's.
    run = _play(fleet, "rollback.yml", "-e", "rollback_cluster=b")
    assert run.returncode == 0, run.stdout + run.stderr
    _assert_back_before_the_update(fleet, "node-b")
    journal = _journal(fleet, "node-b")
    assert journal["status"] == "closed" and journal["result"] == "rolled back", journal
    record = json.loads((fleet / "node-b/state/last-update.json").read_text())
    assert record["playbook"] == "playbooks/rollback.yml" and record["result"] == "rolled back", record

    # Resumed from the stopped run's report: b and d only; the new report still names a and c, as updated earlier,
    # so it covers the whole fleet and says the update is complete.
    earlier = fleet / "stopped-report.json"
    earlier.write_text((fleet / "report.json").read_text())
    run = _play(fleet, "update.yml", "-e", f"fleet_resume_from={earlier}")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Already updated, skipped: a, c" in out, out
    report = json.loads((fleet / "report.json").read_text())
    assert {name: (c["outcome"], c["wave"]) for name, c in report["clusters"].items()} == {
        "a": ("updated", None), "b": ("updated", 1), "c": ("updated", None), "d": ("updated", 2),
    }, report  # fmt: skip
    assert "earlier run" in report["clusters"]["a"]["detail"] and "detail" not in report["clusters"]["b"]
    assert report["result"] == "completed", report
    for host in HOSTS:
        assert (_current(fleet, host, "app"), _current(fleet, host, "tool")) == ("2.0", "2.0"), host


def test_rollback_after_the_controller_died_between_two_switches_uses_the_journal(fleet: Path):
    _interrupt(fleet)
    journal = _journal(fleet, "node-a")
    assert journal["status"] == "open" and journal["snapshot"] == {"app": "1.0", "tool": "1.0"}

    run = _play(fleet, "rollback.yml", "-e", "rollback_cluster=a")
    assert run.returncode == 0, run.stdout + run.stderr
    _assert_back_before_the_update(fleet, "node-a")
    assert _journal(fleet, "node-a")["status"] == "closed"
    bom = json.loads((fleet / "node-a/state/bom.json").read_text())
    assert bom["components"]["app"]["release"] == "1.0" and bom["components"]["tool"]["release"] == "1.0"


def test_the_node_rolls_itself_back_at_boot_from_an_open_journal(fleet: Path):
    _interrupt(fleet)
    unit = (fleet / "node-a/units/claw-release-rollback.service").read_text()
    assert (fleet / "node-a/units/multi-user.target.wants/claw-release-rollback.service").is_symlink()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start)
    assert argv[0] == "/usr/bin/python3" and Path(argv[2]).is_file(), unit
    # The boot runs the installed script with the system's Python, which has no Ansible, and no controller.
    boot = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})
    assert boot.returncode == 0, boot.stdout + boot.stderr
    _assert_back_before_the_update(fleet, "node-a")
    journal = _journal(fleet, "node-a")
    assert journal["status"] == "closed" and journal["result"] == "rolled back at boot", journal
    record = json.loads((fleet / "node-a/state/last-update.json").read_text())
    assert record["result"] == "rolled back" and "boot" in record["playbook"], record
    # A second boot finds nothing to do.
    again = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"})
    assert again.returncode == 0 and "no open update journal" in again.stdout, again.stdout + again.stderr
    _assert_back_before_the_update(fleet, "node-a")


def test_the_next_update_rolls_an_interrupted_one_back_first(fleet: Path):
    _interrupt(fleet)
    (fleet / "paused").unlink()
    run = _play(fleet, "update.yml", "--limit", "cluster_a", "-e", '{"fleet_waves": [["a"]]}')
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "rolled back from its update journal" in " ".join(out.split()), out
    assert (_current(fleet, "node-a", "app"), _current(fleet, "node-a", "tool")) == ("2.0", "2.0")
    journal = _journal(fleet, "node-a")
    assert journal["status"] == "closed" and journal["result"] == "applied"
    # The new run's snapshot is the rolled-back node's, and tool's state for 1.0 was saved from the right one.
    assert journal["snapshot"] == {"app": "1.0", "tool": "1.0"}
    saved = fleet / "node-a/tool/state/1.0" / str(fleet / "node-a/tool-state").strip("/").replace("/", "__")
    assert (saved / "db").read_text() == "schema 1.0\n"
    report = json.loads((fleet / "report.json").read_text())
    assert report["result"] == "completed" and report["clusters"]["a"]["outcome"] == "updated", report
