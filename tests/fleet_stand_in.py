"""The local stand-in fleet that update.yml and rollback.yml run on in tests: one-host "clusters" over the local
connection, each node a directory under a root (tmp_path) with its components' releases and ``current`` links, and
a wave's tasks that only switch links there. tests/test_fleet_update_local.py, tests/test_fleet_journal.py and
tests/test_collection_package.py write theirs with it, and benchmarks/perf/fleet.py --scale its fleets of hundreds
of clusters (``numbered_hosts``); nothing outside the root is written (the boot-time rollback's unit and script
too go under each node's directory).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

NODE = "{{ fleet_test_root }}/{{ inventory_hostname }}"
HOSTS = ("node-a", "node-b", "node-c")
# The one component of ``one_app``'s fleets: the claw apps under each node's app/.
APP = {"name": "claw_apps", "root": f"{NODE}/app", "units": []}

# A wave that switches the component under app/ to a stand-in release 2.0.
SWITCH_APP = """\
- name: Install the new release, a stand-in directory
  ansible.builtin.file:
    path: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/releases/2.0"
    state: directory
    mode: "0755"

- name: Make it the current one
  ansible.builtin.file:
    src: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/releases/2.0"
    dest: "{{ fleet_test_root }}/{{ inventory_hostname }}/app/current"
    state: link
    force: true
"""

# Cluster b's acceptance check: it passes only while b's app is on 1.0, so b refuses the new release.
REFUSE_ON_B = {
    "appliance_gate_commands": [
        ["sh", "-c", 'test "$(readlink {{ fleet_test_root }}/node-b/app/current)" = '
         '"{{ fleet_test_root }}/node-b/app/releases/1.0"']
    ]
}  # fmt: skip


def numbered_hosts(count: int) -> tuple[str, ...]:
    """node-1 .. node-<count>: clusters 1 .. <count>."""
    return tuple(f"node-{index}" for index in range(1, count + 1))


def cluster_of(host: str) -> str:
    """A host's cluster: what follows its last dash (node-a: a, node-17: 17)."""
    return host.rpartition("-")[2]


def inventory(
    root: Path,
    hosts: tuple[str, ...],
    node_vars: dict[str, Any],
    cluster_vars: dict[str, dict] | None = None,
    **fleet_vars: Any,
) -> dict:
    """One cluster per host (``cluster_<cluster_of(host)>``, with ``cluster_vars`` of that name), all of them claw
    nodes whose state directory is under ``root`` (``node_vars`` added); ``fleet_vars`` go to all hosts."""
    clusters: dict[str, dict] = {f"cluster_{cluster_of(host)}": {"hosts": {host: None}} for host in hosts}
    for name, group_vars in (cluster_vars or {}).items():
        clusters[f"cluster_{name}"]["vars"] = group_vars
    claw_vars = {
        "appliance_health_gates": ["commands"],
        "release_state_dir": f"{NODE}/state",
        "release_unit_dir": f"{NODE}/units",
        "release_libexec_dir": f"{NODE}/libexec",
        "release_bom_engine": "",
        "release_bom_models": [],
        **node_vars,
    }
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "fleet_test_root": str(root),
                "fleet_update_tasks": str(root / "wave.yml"),
                **fleet_vars,
            },
            "children": {
                **clusters,
                "claw": {"hosts": dict.fromkeys(hosts), "vars": claw_vars},
                "crush": {"hosts": {}},
            },
        }
    }


def write(root: Path, inventory: dict, wave: str, group_vars: Path | None = None) -> Path:
    """``root`` with inventory.yml, wave.yml (``fleet_update_tasks``) and, if given, ``group_vars`` linked as the
    inventory's group_vars."""
    root.mkdir(exist_ok=True)
    (root / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (root / "wave.yml").write_text(wave)
    if group_vars is not None:
        (root / "group_vars").symlink_to(group_vars)
    return root


def one_app(
    root: Path,
    hosts: tuple[str, ...],
    wave: str,
    group_vars: Path | None = None,
    node_vars: dict[str, Any] | None = None,
    cluster_vars: dict[str, dict] | None = None,
    **fleet_vars: Any,
) -> Path:
    """A fleet of one-host clusters (``inventory``'s arguments) with one component (``APP``, claw_apps) under each
    node's app/ on release 1.0 and an empty units/ (its /etc/systemd/system), written under ``root`` with ``wave``
    as what an update applies."""
    fleet = inventory(root, hosts, {"release_components": [APP], **(node_vars or {})}, cluster_vars, **fleet_vars)
    write(root, fleet, wave, group_vars)
    for host in hosts:
        release = root / host / "app/releases/1.0"
        release.mkdir(parents=True)
        (root / host / "app/current").symlink_to(release)
        (root / host / "units").mkdir()  # /etc/systemd/system
    return root


def refusing_b(root: Path, wave: str, group_vars: Path | None = None, **node_vars: Any) -> Path:
    """Clusters a, b and c, one wave each, on release 1.0 of claw_apps (``one_app``); b's acceptance check refuses
    the release ``wave`` switches it to."""
    return one_app(root, HOSTS, wave, group_vars, node_vars, {"b": REFUSE_ON_B}, fleet_serial=[1])
