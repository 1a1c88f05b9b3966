#!/usr/bin/env python3
"""Provisioning speed: first converge and no-op re-converge of both demo nodes.

Builds a throw-away two-node cluster beside the demo one (own names, network and key, so a
running `make up` cluster is left alone), times playbooks/site.yml twice and prints the numbers
with the ansible-core version and the host's facts. Target: the no-op re-converge <= 30 s with
changed=0 on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from perfutil import changed, host_facts, ssh_node_vars

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODES = [{"name": "bench-claw", "ipv4": "10.89.78.10"}, {"name": "bench-crush", "ipv4": "10.89.78.11"}]
CLUSTER = {
    "demo_cluster_nodes": NODES,
    "demo_cluster_network": "claw-bench",
    "demo_cluster_subnet": "10.89.78.0/24",
    "demo_cluster_state_dir": str(REPO / ".cache" / "bench"),
}


def ansible(*args: str) -> tuple[float, str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    start = time.perf_counter()
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def write_inventory() -> Path:
    state = CLUSTER["demo_cluster_state_dir"]
    inventory = {
        "all": {
            "children": {
                "claw": {"hosts": {"bench-claw": {"ansible_host": NODES[0]["ipv4"]}}},
                "crush": {"hosts": {"bench-crush": {"ansible_host": NODES[1]["ipv4"]}}},
            },
            "vars": {
                **ssh_node_vars(state),
            },
        }
    }
    path = Path(state) / "inventory.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(inventory))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the benchmark nodes running")
    args = parser.parse_args(argv)
    extra = json.dumps(CLUSTER)
    remove = json.dumps({**CLUSTER, "demo_cluster_state": "absent"})
    ansible("ansible-playbook", "playbooks/demo.yml", "-e", remove)
    try:
        create_s, _ = ansible("ansible-playbook", "playbooks/demo.yml", "-e", extra)
        inventory = str(write_inventory())
        first_s, first = ansible("ansible-playbook", "-i", inventory, "playbooks/site.yml")
        noop_s, noop = ansible("ansible-playbook", "-i", inventory, "playbooks/site.yml")
    finally:
        if not args.keep:
            ansible("ansible-playbook", "playbooks/demo.yml", "-e", remove)

    print("PicoCluster Claw provisioning benchmark (2 nodes, playbooks/site.yml)")
    for key, value in host_facts(BIN).items():
        print(f"  {key:18} {value}")
    print(f"  {'nodes created in':18} {create_s:6.1f} s (containers from the cached base image)")
    print(f"{'run':24} {'wall s':>8}  changed per node")
    print(f"{'first converge':24} {first_s:8.1f}  {changed(first)}")
    print(f"{'no-op re-converge':24} {noop_s:8.1f}  {changed(noop)}")
    unchanged = all(v == 0 for v in changed(noop).values())
    target = "met" if noop_s <= 30 else "missed"
    print(f"no-op re-converge changed=0: {'yes' if unchanged else 'NO'}; target <= 30 s: {target}")
    return 0 if unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
