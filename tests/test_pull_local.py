"""Pull mode with the push update's guarantees, on this machine over local connections (as tests/test_fleet_journal.py).

Role pull's script (claw-pull.sh.j2, rendered as the role renders it) runs for stand-in nodes under tmp_path: each
node has an ``app`` component installed side by side (releases 0.9 and 1.0, ``current`` on 1.0; its bill of
materials names 0.9 as the release before, where a rollback from the bill of materials would wrongly take it) and
its own checkout of a throw-away repository, pulled at a pinned commit. That repository is this checkout's
playbooks, roles and plugins (linked), an inventory of one cluster, and a stand-in pulled playbook that switches
``app`` to 2.0 and records the switch as the roles do. Nothing outside tmp_path is written.

(a) crush before claw: claw's run waits (no switch) while its crush has not pulled the revision; crush pulls it
    (gate passes: updated); claw then pulls it (updated), and again (unchanged); both report it, crush through the
    exporter claw reads.
(b) a failing gate (or a pulled run that fails after its switch): the node is rolled back to exactly the release
    before the run, the journal is closed, the result says ``rolled back`` with the failing check's message, and
    the claw exporter reports it.
(c) claw waits, without switching anything and without hanging, while its crush does not answer, was rolled back,
    or succeeded with another revision.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from claw.exporters.claw import ClawCollector, ClawExporterSettings
from claw.exporters.crush import CrushCollector
from prometheus_client import CollectorRegistry, start_http_server

from tests.ansible_render import Node

REPO = Path(__file__).resolve().parent.parent
NODE = "{{ pull_test_root }}/{{ inventory_hostname }}"
CLAW, CRUSH = "pull-claw", "pull-crush"

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="the records are written owned by root"),
]

# The pulled playbook of the stand-in nodes: release 2.0 of app, switched and recorded as the roles do.
STAND_IN_RUN = f"""\
---
- name: A stand-in node's update
  hosts: claw:crush
  gather_facts: false
  tasks:
    - name: Install release 2.0 of app
      ansible.builtin.file:
        path: "{NODE}/app/releases/2.0"
        state: directory
        mode: "0755"

    - name: Switch app to 2.0
      ansible.builtin.file:
        src: "{NODE}/app/releases/2.0"
        dest: "{NODE}/app/current"
        state: link
        force: true
      register: __test_switch

    - name: Record the switch in the update journal (as the roles do after theirs)
      ansible.builtin.include_role:
        name: release
        tasks_from: record_switch
      when: __test_switch is changed

    - name: Break after the switch when the test says so
      ansible.builtin.fail:
        msg: the stand-in update broke after its switch
      when: pull_test_break | default(false) | bool
"""

# The site check that refuses app 2.0 on claw (its message is what the result must carry).
REFUSE_2_0 = [
    ["sh", "-c", "echo 'app 2.0 refused by the site check' >&2; "
     f'test "$(readlink {NODE}/app/current)" = "{NODE}/app/releases/1.0"']
]  # fmt: skip


def _inventory(root: Path, hosts: dict[str, dict]) -> dict:
    """One cluster (``cluster_t``) of ``hosts`` (name -> {kind: claw|crush, host vars...}); ``localhost`` is only
    there for ansible-pull's checkout step, which targets the machine's own names (a real node is named after its
    inventory host)."""
    cluster_vars = {
        "release_components": [{"name": "app", "root": f"{NODE}/app", "units": []}],
        "release_state_dir": f"{NODE}/state",
        "release_unit_dir": f"{NODE}/units",
        "release_libexec_dir": f"{NODE}/libexec",
        "release_bom_engine": "",
        "release_bom_models": [],
        "appliance_health_gates": ["commands"],
        "appliance_gate_commands": [["test", "-d", f"{NODE}/app/current"]],
        "pull_crush_timeout": 3,
    }
    kinds: dict[str, dict] = {"claw": {}, "crush": {}}
    for name, settings in hosts.items():
        kinds[settings["kind"]][name] = {key: value for key, value in settings.items() if key != "kind"} or None
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "pull_test_root": str(root),
            },
            "hosts": {"localhost": None},
            "children": {
                "cluster_t": {"hosts": dict.fromkeys(hosts), "vars": cluster_vars},
                "claw": {"hosts": kinds["claw"]},
                "crush": {"hosts": kinds["crush"]},
            },
        }
    }


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _origin(root: Path, hosts: dict[str, dict]) -> tuple[Path, str]:
    """The repository the nodes pull, and its commit."""
    repo = root / "origin"
    (repo / "inventory").mkdir(parents=True)
    (repo / "standin").mkdir()
    for name in ("playbooks", "roles", "plugins"):
        (repo / name).symlink_to(REPO / name)
    (repo / "inventory/hosts.yml").write_text(yaml.safe_dump(_inventory(root, hosts)))
    (repo / "standin/site.yml").write_text(STAND_IN_RUN)
    _git("init", "-q", ".", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "the release to pull", cwd=repo)
    return repo, _git("rev-parse", "HEAD", cwd=repo)


def _node(root: Path, host: str, repo: Path, commit: str) -> None:
    """A stand-in node on app 1.0 with role pull's script and its first clone, as the role leaves them."""
    node = root / host
    for release in ("0.9", "1.0"):
        (node / "app/releases" / release).mkdir(parents=True)
    (node / "app/current").symlink_to(node / "app/releases/1.0")
    for directory in ("state", "units", "libexec"):
        (node / directory).mkdir()
    bom = {"components": {"app": {"release": "1.0", "previous": "0.9"}}}
    (node / "state/bom.json").write_text(json.dumps(bom))
    (node / "state/last-update.json").write_text(json.dumps({"playbook": "earlier", "result": "applied"}))
    settings = {
        "pull_repo_url": str(repo),
        "pull_ref": commit,
        "pull_playbook": "standin/site.yml",
        "pull_inventory": "inventory/hosts.yml",
        "pull_limit": host,
        "pull_python_packages": [],
        "pull_install_dir": str(node / "pull"),
        "pull_controller_python": sys.executable,
        "_pull_result": str(node / "state/pull-result.json"),
    }
    script = node / "claw-pull"
    script.write_text(Node(["pull"], **settings).template("pull", "claw-pull.sh.j2"))
    script.chmod(0o755)
    _git("clone", "-q", str(repo), str(node / "pull/checkout"), cwd=root)


def _pull(root: Path, host: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """One run of the node's pull script (what claw-pull.service starts): its exit and pull-result.json."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    run = subprocess.run(
        ["/bin/bash", str(root / host / "claw-pull")], env=env, capture_output=True, text=True, timeout=400, check=False
    )
    result_file = root / host / "state/pull-result.json"
    assert result_file.exists(), run.stdout + run.stderr
    return run, json.loads(result_file.read_text())


def _current(root: Path, host: str) -> str:
    return (root / host / "app/current").readlink().name


def _journal(root: Path, host: str) -> dict | None:
    path = root / host / "state/update-journal.json"
    return json.loads(path.read_text()) if path.exists() else None


def _assert_untouched(root: Path, host: str) -> None:
    assert _current(root, host) == "1.0"
    assert not (root / host / "app/releases/2.0").exists()
    journal = _journal(root, host)
    assert journal is None or journal["status"] != "open", journal


def _timestamps(result: dict) -> None:
    started, finished = datetime.fromisoformat(result["started"]), datetime.fromisoformat(result["finished"])
    assert started <= finished and started.tzinfo is not None, result


@contextlib.contextmanager
def _serving(registry: CollectorRegistry) -> Iterator[str]:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _crush_exporter(root: Path, result_file: Path) -> CollectorRegistry:
    """The crush exporter with only the pull source (no sysfs, no engine) reading ``result_file``."""
    (root / "sysfs").mkdir(exist_ok=True)
    registry = CollectorRegistry()
    registry.register(CrushCollector(root / "sysfs", engine=None, pull_result_file=result_file))
    return registry


def test_crush_then_claw_a_passing_gate_updates_and_reports(tmp_path: Path):
    crush_result = tmp_path / CRUSH / "state/pull-result.json"
    with _serving(_crush_exporter(tmp_path, crush_result)) as crush_url:
        hosts = {CRUSH: {"kind": "crush"}, CLAW: {"kind": "claw", "pull_crush_result_url": crush_url}}
        repo, commit = _origin(tmp_path, hosts)
        for host in hosts:
            _node(tmp_path, host, repo, commit)

        # claw first: its crush has not pulled this revision, so claw switches nothing.
        run, result = _pull(tmp_path, CLAW)
        assert run.returncode == 0, run.stdout + run.stderr
        assert result["outcome"] == "waiting-for-crush" and result["revision"] == commit, result
        assert "crush" in result["message"], result
        _assert_untouched(tmp_path, CLAW)

        # crush: the pulled run, the gate (passes), the journal closed, reported.
        run, result = _pull(tmp_path, CRUSH)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out
        assert result["outcome"] == "updated" and result["revision"] == commit and result["message"] == "", result
        assert result["ref"] == commit and result["rc"] == 0 and result["playbook"] == "standin/site.yml", result
        _timestamps(result)
        assert _current(tmp_path, CRUSH) == "2.0"
        journal = _journal(tmp_path, CRUSH)
        assert journal["status"] == "closed" and journal["result"] == "applied", journal
        assert journal["snapshot"] == {"app": "1.0"}, journal
        record = json.loads((tmp_path / CRUSH / "state/last-update.json").read_text())
        assert record["playbook"] == "standin/site.yml" and record["result"] == "applied", record

        # claw again: crush's exporter now reports this revision updated, so claw updates too.
        run, result = _pull(tmp_path, CLAW)
        assert run.returncode == 0, run.stdout + run.stderr
        assert result["outcome"] == "updated" and result["revision"] == commit, result
        assert _current(tmp_path, CLAW) == "2.0"
        assert _journal(tmp_path, CLAW)["status"] == "closed"

        # The same revision once more: nothing new, reported unchanged.
        run, result = _pull(tmp_path, CLAW)
        assert run.returncode == 0, run.stdout + run.stderr
        assert result["outcome"] == "unchanged" and result["revision"] == commit, result
        assert result["last_success"]["revision"] == commit, result
        assert _current(tmp_path, CLAW) == "2.0"


@pytest.mark.parametrize("failure", ["gate", "run"])
def test_a_failing_gate_rolls_the_node_back_and_reports_it(tmp_path: Path, failure: str):
    claw_vars = {"appliance_gate_commands": REFUSE_2_0} if failure == "gate" else {"pull_test_break": True}
    repo, commit = _origin(tmp_path, {CLAW: {"kind": "claw", **claw_vars}})
    _node(tmp_path, CLAW, repo, commit)

    run, result = _pull(tmp_path, CLAW)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert result["outcome"] == "rolled back" and result["revision"] == commit and result["rc"] != 0, result
    expected = {"gate": "app 2.0 refused by the site check", "run": "the stand-in update broke after its switch"}
    assert expected[failure] in result["message"], result
    _timestamps(result)

    # Back on exactly the release before the run (the journal's 1.0, not the bill of materials' 0.9).
    assert _current(tmp_path, CLAW) == "1.0"
    assert (tmp_path / CLAW / "app/releases/2.0").is_dir()
    journal = _journal(tmp_path, CLAW)
    assert journal["status"] == "closed" and journal["result"] == "rolled back", journal
    assert journal["snapshot"] == {"app": "1.0"}
    assert [(s["component"], Path(s["to"]).name) for s in journal["switches"]] == [("app", "2.0")], journal
    record = json.loads((tmp_path / CLAW / "state/last-update.json").read_text())
    assert record["result"] == "rolled back", record

    # The claw exporter reports it.
    registry = CollectorRegistry()
    settings = ClawExporterSettings(
        sysfs_root=tmp_path / "sysfs", gateway_url=None, leds_socket=None,
        pull_result_file=tmp_path / CLAW / "state/pull-result.json",
    )  # fmt: skip
    registry.register(ClawCollector(settings))
    value = registry.get_sample_value
    assert value("claw_pull_last_outcome", {"outcome": "rolled back", "revision": commit}) == 1
    assert value("claw_pull_last_outcome", {"outcome": "updated", "revision": commit}) == 0
    finished = datetime.fromisoformat(result["finished"]).timestamp()
    assert value("claw_pull_last_timestamp_seconds") == pytest.approx(finished)


def _silent_port() -> socket.socket:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


@pytest.mark.parametrize("crush", ["silent", "rolled back", "another revision"])
def test_claw_waits_while_its_crush_has_not_succeeded(tmp_path: Path, crush: str):
    crush_result = tmp_path / CRUSH / "state/pull-result.json"
    with contextlib.ExitStack() as stack:
        if crush == "silent":
            listener = stack.enter_context(_silent_port())
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        else:
            url = stack.enter_context(_serving(_crush_exporter(tmp_path, crush_result)))
        hosts = {CRUSH: {"kind": "crush"}, CLAW: {"kind": "claw", "pull_crush_result_url": url}}
        repo, commit = _origin(tmp_path, hosts)
        _node(tmp_path, CLAW, repo, commit)
        crush_result.parent.mkdir(parents=True)
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        crush_result.write_text(json.dumps({
            "revision": commit if crush == "rolled back" else "0" * 40,
            "outcome": "rolled back" if crush == "rolled back" else "updated",
            "started": now, "finished": now, "message": "",
        }))  # fmt: skip

        started = time.monotonic()
        run, result = _pull(tmp_path, CLAW)
        assert run.returncode == 0, run.stdout + run.stderr
        assert result["outcome"] == "waiting-for-crush" and result["revision"] == commit, result
        assert result["message"], result
        assert time.monotonic() - started < 120, "claw must give up on a silent crush after its timeout"
        _assert_untouched(tmp_path, CLAW)
