"""The local stand-in fleet that update.yml and rollback.yml run on in tests: one-host "clusters" over the local
connection, each node a directory under a root (tmp_path) with its components' releases and ``current`` links, and
a wave's tasks that only switch links there. tests/test_fleet_update_local.py, tests/test_fleet_journal.py and
tests/test_collection_package.py write theirs with it; nothing outside the root is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

NODE = "{{ fleet_test_root }}/{{ inventory_hostname }}"
HOSTS = ("node-a", "node-b", "node-c")

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


def inventory(
    root: Path,
    hosts: tuple[str, ...],
    node_vars: dict[str, Any],
    cluster_vars: dict[str, dict] | None = None,
    **fleet_vars: Any,
) -> dict:
    """One cluster per host (``cluster_<last letter>``, with ``cluster_vars`` of that letter), all of them claw nodes
    whose state directory is under ``root`` (``node_vars`` added); ``fleet_vars`` go to all hosts."""
    clusters: dict[str, dict] = {f"cluster_{host[-1]}": {"hosts": {host: None}} for host in hosts}
    for letter, group_vars in (cluster_vars or {}).items():
        clusters[f"cluster_{letter}"]["vars"] = group_vars
    claw_vars = {
        "appliance_health_gates": ["commands"],
        "release_state_dir": f"{NODE}/state",
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


def refusing_b(root: Path, wave: str, group_vars: Path | None = None, **node_vars: Any) -> Path:
    """Clusters a, b and c, one wave each, with one component (claw_apps) under each node's app/ on release 1.0;
    b's acceptance check refuses the release ``wave`` switches it to."""
    component = {"name": "claw_apps", "root": f"{NODE}/app", "units": []}
    fleet = inventory(
        root, HOSTS, {"release_components": [component], **node_vars}, {"b": REFUSE_ON_B}, fleet_serial=[1]
    )
    write(root, fleet, wave, group_vars)
    for host in HOSTS:
        release = root / host / "app/releases/1.0"
        release.mkdir(parents=True)
        (root / host / "app/current").symlink_to(release)
    return root
