"""The bundle's Debian packages (apps/claw/apt_repo.py): names, refusals, and a real gathering through this
machine's own apt sources (network, like tests/test_board_locks.py), then again with no network at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from claw import apt_repo, bundle

REPO = Path(__file__).resolve().parent.parent
PLAY = yaml.safe_load((REPO / "playbooks/bundle.yml").read_text())[0]
# Role apt tasks that never run on a node installed from a bundle, and why.
NOT_ON_A_BUNDLE_NODE = {
    "roles/llamacpp/tasks/build.yml": "a bundle carries the built wheel; nothing is compiled on the node",
    "roles/image/tasks/tools.yml": "the image builder's tools, on the controller",
    "roles/demo_cluster/tasks/runtime.yml": "the demo's container runtime, on the controller",
}


def test_targets_are_distribution_major_and_cpu() -> None:
    target = apt_repo.Target.parse("debian12-aarch64")
    assert (target.distribution, target.major, target.cpu, target.arch) == ("debian", "12", "aarch64", "arm64")
    assert str(apt_repo.Target.parse("ubuntu22-x86_64")) == "ubuntu22-x86_64"
    for bad in ["debian-aarch64", "12-x86_64", "debian12-arm64", "debian12", ""]:
        with pytest.raises(ValueError, match="is not <distribution><major>-<cpu>"):
            apt_repo.Target.parse(bad)


def test_package_file_names_round_trip_with_epochs() -> None:
    deb = apt_repo.DebFile.parse("libaudit1_1%3a3.0.9-1_amd64.deb")
    assert (deb.name, deb.version, deb.arch) == ("libaudit1", "1:3.0.9-1", "amd64")
    assert deb.filename == "libaudit1_1%3a3.0.9-1_amd64.deb"
    for bad in ["libaudit1_1.0_amd64.tar", "libaudit1-1.0-amd64.deb", "a_b_c_d.deb"]:
        with pytest.raises(ValueError):
            apt_repo.DebFile.parse(bad)


def test_a_target_of_another_distribution_is_refused_naming_where_to_gather_it() -> None:
    apt_repo.check_target(apt_repo.Target.parse("debian12-aarch64"), ("debian", "12"))
    with pytest.raises(ValueError, match="gather it on a ubuntu 22 machine"):
        apt_repo.check_target(apt_repo.Target.parse("ubuntu22-aarch64"), ("debian", "12"))
    with pytest.raises(ValueError, match="for debian 13"):
        apt_repo.check_target(apt_repo.Target.parse("debian12-x86_64"), ("debian", "13"))


def test_controller_release_reads_os_release(tmp_path: Path) -> None:
    (tmp_path / "os-release").write_text('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n')
    assert apt_repo.controller_release(tmp_path / "os-release") == ("ubuntu", "22")


def _apt_task_packages() -> dict[str, set[str]]:
    """Every package a role's apt task installs, by task file (names given literally or by base's defaults)."""
    base = yaml.safe_load((REPO / "roles/base/defaults/main.yml").read_text())
    found: dict[str, set[str]] = {}
    for path in sorted(REPO.glob("roles/*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            apt = task.get("ansible.builtin.apt") if isinstance(task, dict) else None
            if not apt or apt.get("state", "present") != "present" or "name" not in apt:
                continue
            names = apt["name"]
            if isinstance(names, str) and "base_packages" in names:
                names = [*base["base_packages"], "unattended-upgrades"]
            elif isinstance(names, str) and "{{" in names:
                names = [f"(templated) {names}"]
            found.setdefault(str(path.relative_to(REPO)), set()).update([names] if isinstance(names, str) else names)
    return found


def test_the_bundle_gathers_every_package_a_role_installs_on_a_node() -> None:
    listed = set(PLAY["vars"]["bundle_apt_bare_packages"])
    assert (
        PLAY["vars"]["bundle_apt_packages"] == "{{ __bundle_base_defaults.base_packages + __bundle_apt_role_packages }}"
    )
    base = yaml.safe_load((REPO / "roles/base/defaults/main.yml").read_text())["base_packages"]
    gathered = listed | set(PLAY["vars"]["__bundle_apt_role_packages"]) | set(base)
    tasks = _apt_task_packages()
    assert "roles/prometheus/tasks/install.yml" in tasks and "roles/base/tasks/install.yml" in tasks
    missing = {
        path: sorted(names - gathered)
        for path, names in tasks.items()
        if path not in NOT_ON_A_BUNDLE_NODE and names - gathered
    }
    assert missing == {}, "packages a role installs that playbooks/bundle.yml does not gather"
    # The packages installed without their recommended ones are gathered that way too.
    for path in ["roles/prometheus/tasks/install.yml", "roles/exporters/tasks/node_exporter.yml"]:
        assert tasks[path] <= listed, path


@pytest.fixture(scope="module")
def host_target() -> apt_repo.Target:
    distribution, major = apt_repo.controller_release()
    machine = os.uname().machine
    if distribution not in ("debian", "ubuntu") or machine not in apt_repo.DPKG_ARCH or not shutil.which("apt-get"):
        pytest.skip("gathering needs a Debian or Ubuntu controller with apt")
    return apt_repo.Target(distribution, major, machine)


def run_tool(*args: str | Path, network: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "apps/claw/apt_repo.py"), *map(str, args)]
    if not network:
        command = ["unshare", "--net", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """apt's indexes for the host target, read once for the module's gatherings."""
    return tmp_path_factory.mktemp("apt-state")


def test_a_real_gathering_is_an_apt_repository_with_upstream_checksums(tmp_path: Path, host_target, state) -> None:
    """zstd with its dependencies for this machine, through its own apt sources: the index lists exactly the files,
    with the signed index's SHA256 of each; a second gathering downloads nothing; with no network at all it still
    succeeds from the last indexes; a smaller set removes what is no longer wanted from the files and the manifest."""
    first = run_tool(tmp_path / "b", f"--target={host_target}", "--package=zstd", f"--state={state}")
    assert first.returncode == 0, first.stderr
    directory = tmp_path / "b" / "apt" / str(host_target)
    debs = sorted(path.name for path in directory.glob("*.deb"))
    assert "libc6" in {apt_repo.DebFile.parse(name).name for name in debs}  # the closure of a bare system
    assert f"downloaded {len(debs)}, kept 0" in first.stdout
    stanzas = (directory / "Packages").read_text().strip().split("\n\n")
    assert len(stanzas) == len(debs)
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        assert fields["Filename"].removeprefix("./") in debs
        assert bundle.sha256_file(directory / fields["Filename"]) == fields["SHA256"]
    # No apt lock or partial/ left behind.
    assert sorted(path.name for path in directory.iterdir()) == sorted([*debs, "Packages"])
    assert bundle.verify(tmp_path / "b") == []
    entries = bundle.read_manifest(tmp_path / "b")
    assert {path for path in entries if path.startswith("apt/")} == {
        f"apt/{host_target}/{n}" for n in [*debs, "Packages"]
    }

    again = run_tool(tmp_path / "b", f"--target={host_target}", "--package=zstd", f"--state={state}")
    assert f"downloaded 0, kept {len(debs)}" in again.stdout, again.stderr
    if os.geteuid() == 0 and shutil.which("unshare"):
        offline = run_tool(
            tmp_path / "b", f"--target={host_target}", "--package=zstd", f"--state={state}", network=False
        )
        assert f"downloaded 0, kept {len(debs)}" in offline.stdout, offline.stderr

    smaller = run_tool(tmp_path / "b", f"--target={host_target}", "--package=liblzma5", f"--state={state}")
    assert smaller.returncode == 0, smaller.stderr
    left = {path.name for path in directory.glob("*.deb")}
    assert left < set(debs) and not any(apt_repo.DebFile.parse(name).name == "zstd" for name in left)
    assert bundle.verify(tmp_path / "b") == []
    assert not any("/zstd_" in path for path in bundle.read_manifest(tmp_path / "b"))


def test_a_package_apt_does_not_know_fails_naming_it(tmp_path: Path, host_target, state) -> None:
    result = run_tool(tmp_path / "b", f"--target={host_target}", "--package=no-such-package-claw", f"--state={state}")
    assert result.returncode == 1 and "no-such-package-claw" in result.stderr


NODE_PLAY = """
- name: Role base's bundle step on this machine, checked only
  hosts: node
  gather_facts: true
  tasks:
    - name: Take packages from the bundle
      ansible.builtin.include_role:
        name: base
        tasks_from: apt_bundle
"""


def run_bundle_step(tmp_path: Path, apt_dir: Path) -> subprocess.CompletedProcess:
    """Role base's apt_bundle tasks against this machine over the local connection, in check mode (nothing here
    may change even if the role misbehaved): what a node's converge does before it touches the node."""
    (tmp_path / "play.yml").write_text(NODE_PLAY)
    (tmp_path / "hosts").write_text(f"node ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts"), "--check",
        str(tmp_path / "play.yml"), "-e", f"base_apt_bundle_dir={apt_dir}",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_a_node_whose_target_the_bundle_lacks_is_refused_before_anything_changes(tmp_path: Path) -> None:
    (tmp_path / "bundle/apt/debian99-x86_64").mkdir(parents=True)
    result = run_bundle_step(tmp_path, tmp_path / "bundle/apt")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "has no Debian packages for this node's target" in output and "Nothing on the node was changed" in output
    assert "Verify the bundle's packages" not in output  # refused at the first check


def test_a_changed_package_index_is_refused_by_the_manifest(tmp_path: Path, host_target, state) -> None:
    gathered = run_tool(tmp_path / "b", f"--target={host_target}", "--package=libzstd1", f"--state={state}")
    assert gathered.returncode == 0, gathered.stderr
    index = tmp_path / "b/apt" / str(host_target) / "Packages"
    index.write_text(index.read_text().replace("SHA256: ", "SHA256: 0", 1))
    result = run_bundle_step(tmp_path, tmp_path / "b/apt")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and f"apt/{host_target}/Packages" in output, output[-3000:]
    assert "Read the checksum of the node's copy" not in output
