"""The collection picocluster.claw (tools/build_collection.py) built, installed into a clean path and run.

The tarball is installed with ansible-galaxy into a collections path under tmp_path; ansible-playbook then runs
from tmp_path with an empty roles path and an ansible.cfg of its own, so nothing of the repository is found but
the installed copy: the playbooks by their fully qualified names, the roles by the names the playbooks and roles
use, the fleet filters, the roles' modules and the stdout callback. The update is the local stand-in fleet of
tests/fleet_stand_in.py (three one-host clusters over the local connection, a release directory under
tmp_path): cluster b refuses the new release, is rolled back, and the run stops before c. The same update driven
through ansible-runner (the library AWX runs jobs with) gives that outcome per cluster from its events.
The execution environment's definition is accepted by `ansible-builder create`, which writes its build context.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import fleet_stand_in

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.ansible,
    pytest.mark.skipif(os.geteuid() != 0, reason="the records are written owned by root"),
]

PLAYBOOKS = ("site", "update", "rollback", "verify", "models")

# What each wave applies: the claw apps' preflight from the installed role (its source tree, claw_apps_source_dir,
# is the collection's own copy of pyproject.toml and apps/), then a stand-in release switched to 2.0.
WAVE = """\
- name: Check the claw apps' sources and the node's Python (the installed role)
  ansible.builtin.include_role:
    name: claw_apps
    tasks_from: preflight

"""  # fmt: skip
WAVE += fleet_stand_in.SWITCH_APP

CLUSTERS = {host[-1]: host for host in fleet_stand_in.HOSTS}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tarball built and installed under a temporary collections path; the environment that finds only it."""
    root = tmp_path_factory.mktemp("collection")
    built = subprocess.run(
        [sys.executable, str(REPO / "tools/build_collection.py"), "--output", str(root / "dist"),
         "--build-dir", str(root / "build/collection")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = Path(built.stdout.strip().splitlines()[-1])
    assert tarball.name == f"picocluster-claw-{_version()}.tar.gz" and tarball.is_file()
    (root / "roles").mkdir()
    (root / "ansible.cfg").write_text(
        "[defaults]\nstdout_callback = picocluster.claw.claw\nretry_files_enabled = False\n"
        "interpreter_python = auto_silent\n"
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(root / "roles"),
        "ANSIBLE_COLLECTIONS_PATH": str(root / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(root / "tmp"),
    }
    env.pop("ANSIBLE_CALLBACK_PLUGINS", None)
    install = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(root / "collections"),
         str(tarball)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return {"root": str(root), **env}


def _version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _collection(env: dict[str, str]) -> Path:
    return Path(env["ANSIBLE_COLLECTIONS_PATH"]) / "ansible_collections/picocluster/claw"


def _fleet(root: Path) -> Path:
    return fleet_stand_in.refusing_b(root, WAVE, claw_apps_python=sys.executable)


def _ansible(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )  # fmt: skip


def _record(root: Path, host: str) -> tuple[str, dict]:
    state = root / host / "state"
    return str((root / host / "app/current").readlink()), json.loads((state / "last-update.json").read_text())


def _first_record(env: dict[str, str], fleet: Path) -> None:
    """What site.yml writes last (the release role's record), from the installed role.

    An ad-hoc command has no playbook directory: the collection's defaults come in as inventory group_vars for
    this one command, and go again, so the update below finds them beside its playbook in the collection.
    """
    (fleet / "group_vars").symlink_to(_collection(env) / "playbooks/group_vars")
    first = _ansible(
        env, fleet, "ansible", "-i", str(fleet / "inventory.yml"), "claw", "-m", "ansible.builtin.include_role",
        "-a", "name=picocluster.claw.release",
    )  # fmt: skip
    (fleet / "group_vars").unlink()
    assert first.returncode == 0, first.stdout + first.stderr


def _assert_outcome(fleet: Path) -> None:
    current, record = _record(fleet, "node-a")
    assert current.endswith("/releases/2.0") and record["result"] == "applied"
    current, record = _record(fleet, "node-b")
    assert current.endswith("/releases/1.0") and record["result"] == "rolled back"
    current, record = _record(fleet, "node-c")
    assert current.endswith("/releases/1.0") and record["result"] == "applied"  # the first record, untouched
    assert not (fleet / "node-c/app/releases/2.0").exists()


def test_the_tarball_holds_the_collection(installed):
    collection = _collection(installed)
    manifest = json.loads((collection / "MANIFEST.json").read_text())["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("picocluster", "claw", _version())
    for path in (
        "playbooks/site.yml", "playbooks/update.yml", "playbooks/rollback.yml", "playbooks/group_vars/all.yml",
        "plugins/filter/fleet.py", "plugins/callback/claw.py", "plugins/modules/claw_release.py",
        "plugins/modules/release_links.py", "roles/release/tasks/main.yml", "roles/claw_apps/defaults/main.yml",
        # what roles reach as role_path/../..: the wheel's sources, the bundle tool, Prometheus' rules
        "pyproject.toml", "README.md", "apps/claw/bundle.py", "files/prometheus/rules/appliance.rules.yml",
    ):  # fmt: skip
        assert (collection / path).is_file(), path
    assert not (collection / "roles/demo_cluster").exists()
    assert not list(collection.rglob("__pycache__"))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_the_playbooks_resolve_by_their_full_names(installed, playbook):
    run = _ansible(installed, Path(installed["root"]), "ansible-playbook", "-i", "localhost,", "--syntax-check",
                   f"picocluster.claw.{playbook}")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_project_playbook_imports_them(installed, tmp_path):
    # An AWX project runs a playbook file of its own, which imports the collection's.
    (tmp_path / "site.yml").write_text(
        "---\n- name: The appliance\n  ansible.builtin.import_playbook: picocluster.claw.site\n"
    )
    run = _ansible(installed, tmp_path, "ansible-playbook", "-i", "localhost,", "--list-tasks", "site.yml")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "picocluster.claw.base : " in out and "picocluster.claw.threadweaver : " in out


def test_the_fleet_filters_resolve_by_their_full_names(installed):
    run = _ansible(installed, Path(installed["root"]), "ansible", "localhost", "-c", "local", "-m",
                   "ansible.builtin.debug", "-a",
                   "msg={{ ['a', 'b', 'c'] | picocluster.claw.fleet_waves([1, 2]) | to_json }}")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert '[[\\"a\\"], [\\"b\\", \\"c\\"]]' in run.stdout


def test_an_update_from_the_installed_collection_rolls_back_a_failed_cluster(installed, tmp_path):
    fleet = _fleet(tmp_path / "fleet")
    _first_record(installed, fleet)
    run = _ansible(installed, fleet, "ansible-playbook", "-i", str(fleet / "inventory.yml"), "picocluster.claw.update")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    # The waves come from the fleet filters and each host's appliance_cluster (the collection's group_vars).
    assert "Wave 1: a" in out and "Wave 2: b" in out and "Wave 3: c" in out, out
    assert "Cluster b failed its update and was rolled back" in " ".join(out.split())
    # The stdout callback is the collection's: its failure summary closes the output.
    assert "FAILED ON 1 NODE" in out
    _assert_outcome(fleet)
    record = _record(fleet, "node-a")[1]
    assert record["playbook"] == "playbooks/update.yml"


def test_an_update_through_ansible_runner_reports_per_cluster(installed, tmp_path):
    import ansible_runner

    fleet = _fleet(tmp_path / "fleet")
    _first_record(installed, fleet)
    envvars = {key: installed[key] for key in installed if key.startswith("ANSIBLE_") or key == "PATH"}
    # As the execution environment sets it: runner's event callback displays through the appliance's.
    envvars["ANSIBLE_STDOUT_CALLBACK"] = "picocluster.claw.claw"
    (tmp_path / "runner").mkdir()
    result = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook="picocluster.claw.update",
        inventory=str(fleet / "inventory.yml"),
        envvars=envvars,
        quiet=True,
        timeout=300,
    )
    stdout = result.stdout.read()
    assert result.status == "failed" and result.rc != 0, stdout
    assert "FAILED ON 1 NODE" in stdout, stdout

    # Per host: the update tasks that ran and whether it was stopped (its cluster rolled back).
    applied, stopped = set(), set()
    for event in result.events:
        data = event.get("event_data", {})
        if event["event"] == "runner_on_ok" and data.get("task") == "Make it the current one":
            applied.add(data["host"])
        if event["event"] == "runner_on_failed" and data.get("task", "").startswith("Stop the run"):
            stopped.add(data["host"])
    outcome = {
        cluster: "rolled back" if host in stopped else "applied" if host in applied else "not started"
        for cluster, host in CLUSTERS.items()
    }
    assert outcome == {"a": "applied", "b": "rolled back", "c": "not started"}
    assert result.stats["failures"] == {"node-b": 1}
    _assert_outcome(fleet)


def test_ansible_builder_accepts_the_execution_environment(installed, tmp_path):
    # The definition's paths are relative to it: beside it, the requirements/ of the repository and what
    # tools/build_collection.py wrote (dist/ and build/ee/, here the fixture's).
    root = Path(installed["root"])
    shutil.copy2(REPO / "execution-environment.yml", root / "execution-environment.yml")
    shutil.copytree(REPO / "requirements", root / "requirements", dirs_exist_ok=True)
    context = tmp_path / "context"
    run = _ansible(installed, tmp_path, "ansible-builder", "create", "-f", str(root / "execution-environment.yml"),
                   "-c", str(context), "--output-filename", "Containerfile")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "ENV PIP_CONSTRAINT=/etc/picocluster-claw/constraints.txt" in containerfile
    built = context / "_build"
    assert (built / "configs/constraints.txt").read_text() == (REPO / "requirements/constraints.txt").read_text()
    tarball = f"picocluster-claw-{_version()}.tar.gz"
    assert (built / "collections" / tarball).is_file()
    # No registry is named: the base image is the operator's build argument.
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert "/" not in definition["images"]["base_image"]["name"]
    # Every Python package of the image is pinned by the controller's constraints.
    pins = {line.split("==")[0].lower() for line in (REPO / "requirements/constraints.txt").read_text().splitlines()}
    names = [line.strip() for line in (built / "requirements.txt").read_text().splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    assert names and all(name.lower() in pins for name in names), names
    for package in ("ansible-core", "ansible-runner"):
        assert package in pins
    # The Galaxy requirements install the collection from the context, as the image's galaxy stage does.
    options = definition["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"].split()
    install = _ansible(installed, built, "ansible-galaxy", "collection", "install", *options, "--force",
                       "-r", "requirements.yml", "-p", str(tmp_path / "ee-collections"))  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp_path / "ee-collections/ansible_collections/picocluster/claw/playbooks/update.yml").is_file()
