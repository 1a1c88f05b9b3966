""" "No traffic off the network": base's off-network rules loaded into a real nftables, in a network namespace of
the test's own, and refusing (and counting) what a governed user sends off the LAN; the counters' textfile.

The namespace has loopback and one veth with a default route, so an off-LAN connection that the rules let pass
leaves for real (and times out unanswered) while a refused one fails at once with the counter one higher.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from claw.exporters import offnet

from tests.ansible_render import Node
from tests.nodes import CONNECT_ATTEMPT as CONNECT

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nft"), reason="nft in a netns needs root"
)
SYSTEM_PYTHON = "/usr/bin/python3"
OFF_LAN = "203.0.113.9"
ALLOWED = "198.51.100.7"
LAN = "10.1.2.3"


def rules(tmp_path: Path, users: list[dict]) -> Path:
    """The firewall base writes (nftables.conf and offnet.nft, rendered by Ansible's templating) in tmp_path."""
    node = Node(["base"])
    drop_in = tmp_path / "nftables.d"
    drop_in.mkdir()
    lan = node.value("base_firewall_lan_networks")
    extra = {
        "_base_nftables_dir": str(drop_in),
        "_base_offnet_lan4": ["127.0.0.0/8"] + [n for n in lan if ":" not in n],
        "_base_offnet_lan6": ["::1/128"] + [n for n in lan if ":" in n],
        "_base_offnet_rules": users,
    }
    (drop_in / "offnet.nft").write_text(node.template("base", "offnet.nft.j2", **extra))
    main = tmp_path / "nftables.conf"
    main.write_text(node.template("base", "nftables.conf.j2", **extra))
    return main


def in_netns(tmp_path: Path, main: Path, steps: str) -> list[str]:
    """Runs ``steps`` (shell) in a fresh network namespace with the rules loaded; returns its output lines."""
    script = f"""
        set -e
        ip link set lo up
        ip link add v0 type veth peer name v1
        ip link set v0 up; ip link set v1 up
        ip addr add 192.0.2.5/24 dev v0
        ip route add default via 192.0.2.1
        nft -f {main}
        # One attempt each: given up after 0.8 s, "refused" when it failed within 0.5 s.
        as_root() {{ {SYSTEM_PYTHON} -c "$CONNECT" "$1" .8 .5; }}
        nobody="setpriv --reuid nobody --regid nogroup --clear-groups"
        as_nobody() {{ $nobody {SYSTEM_PYTHON} -c "$CONNECT" "$1" .8 .5; }}
        counters() {{ nft -j list counters table inet picocluster_claw | tr -d '\\n'; echo; }}
        {steps}
    """
    done = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", script],
        env={**os.environ, "CONNECT": CONNECT},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@needs_netns
def test_a_governed_user_is_refused_off_the_lan_and_counted_but_reaches_the_lan_and_its_allow_list(tmp_path):
    main = rules(tmp_path, [{"user": "nobody", "allow": ["198.51.100.0/24"]}])
    out = in_netns(
        tmp_path,
        main,
        f"as_nobody {OFF_LAN}; as_nobody {OFF_LAN}; counters; as_nobody {LAN}; as_nobody {ALLOWED}; as_root {OFF_LAN};"
        " counters",
    )
    assert out[0:2] == ["refused", "refused"]
    first = offnet.parse(out[2])
    assert [(r.user, r.packets) for r in first] == [("nobody", 2)]
    assert out[3:6] == ["left", "left", "left"], "the LAN, the allow-list and root are not governed"
    assert offnet.parse(out[6]) == first, "nothing the rules let out is counted"


@needs_netns
def test_a_user_lifted_for_provisioning_goes_out_until_lifted_no_more(tmp_path):
    main = rules(tmp_path, [{"user": "nobody", "allow": []}])
    out = in_netns(
        tmp_path,
        main,
        f'nft add element inet picocluster_claw offnet_provisioning {{ "nobody" }}; as_nobody {OFF_LAN};'
        f' nft delete element inet picocluster_claw offnet_provisioning {{ "nobody" }}; as_nobody {OFF_LAN}',
    )
    assert out == ["left", "refused"]


@needs_netns
def test_the_counters_textfile_reads_the_running_firewall(tmp_path):
    main = rules(tmp_path, [{"user": "nobody", "allow": []}, {"user": "root", "allow": []}])
    textfile = tmp_path / "claw-offnet.prom"
    out = in_netns(
        tmp_path,
        main,
        f"as_nobody {OFF_LAN}; {sys.executable} -m claw.exporters.offnet --textfile {textfile}; echo done",
    )
    assert out[-1] == "done"
    text = textfile.read_text()
    assert 'claw_offnet_refused_packets_total{user="nobody"} 1' in text
    assert 'claw_offnet_refused_packets_total{user="root"} 0' in text
    assert "claw_offnet_rules_loaded 1" in text


def test_without_the_table_the_textfile_says_the_rules_are_not_loaded(monkeypatch):
    monkeypatch.setattr(offnet, "read_counters", lambda: ([], False))
    text = offnet.render([], loaded=False)
    assert "claw_offnet_rules_loaded 0" in text
    assert "claw_offnet_refused_packets_total{" not in text


def test_parse_takes_only_the_offnet_counters_and_names_them_by_their_user():
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"counter": {"name": "offnet_claw_worker_a", "comment": "claw-worker-a", "packets": 3, "bytes": 180}},
            {"counter": {"name": "other", "packets": 9, "bytes": 9}},
            {"counter": {"name": "offnet_threadweaver", "packets": 0, "bytes": 0}},
        ]
    }
    assert offnet.parse(json.dumps(listing)) == [
        offnet.Refused("claw-worker-a", 3, 180),
        offnet.Refused("threadweaver", 0, 0),
    ]
    assert 'user="a\\"b"' in offnet.render([offnet.Refused('a"b', 1, 1)], loaded=True)


def test_every_service_user_of_a_node_is_governed_with_its_own_destinations():
    node = Node(
        ["base", "threadweaver", "openclaw", "swarm"],
        threadweaver_providers={
            "crush": {"kind": "crush", "base_url": "http://10.89.77.11:8080/v1"},
            "cloud": {"kind": "openai", "base_url": "https://api.example.net/v1"},
        },
        openclaw_cloud_providers={"local": {"base_url": "http://127.0.0.1:8099/v1"}},
        swarm_workers=[{"name": "alpha", "model": "cloud/x", "outbound": ["192.0.2.0/24"]}],
        appliance_offnet_allow={"claw-mcp": ["mirror.example.org"]},
    )
    claw = {rule["user"]: rule["allow"] for rule in node.value("appliance_offnet_rules.claw")}
    crush = {rule["user"]: rule["allow"] for rule in node.value("appliance_offnet_rules.crush")}
    assert set(claw) == {
        "threadweaver",
        "openclaw",
        "claw-mcp",
        "claw-leds",
        "prometheus",
        "claw-exporter",
        "claw-swarm",
        "claw-worker-alpha",
    }
    assert claw["threadweaver"] == ["api.example.net"], "the crush provider is on the LAN already"
    assert claw["openclaw"] == [], "loopback needs no allow-list"
    assert claw["claw-worker-alpha"] == ["192.0.2.0/24"]
    assert claw["claw-mcp"] == ["mirror.example.org"]
    assert set(crush) == {"llamacpp", "claw-exporter", "prometheus"}, "only the chosen engine's user exists"


def test_the_rules_resolve_host_names_on_the_node_and_admit_nothing_for_one_that_does_not_resolve(
    run_playbook, tmp_path
):
    """base's firewall_offnet as a converge runs it (check mode, so nothing on this host changes): a name that
    resolves admits its addresses, an unresolvable one (an air-gapped site) admits nothing and fails nothing."""
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role: {name: base, tasks_from: firewall_offnet}
      vars:
        base_firewall_offnet_users:
          - {user: nobody, allow: [localhost, no-such-host.invalid, 198.51.100.0/24]}
    - ansible.builtin.debug: {var: _base_offnet_rules}
"""
    done = run_playbook(play, {"_base_nftables_dir": str(tmp_path)})
    # The reload handler needs systemd's nftables unit; the rules were derived and written before it.
    rules = json.loads(done.stdout.split('"_base_offnet_rules": ', 1)[1].split("\n}\n", 1)[0])
    assert [rule["user"] for rule in rules] == ["nobody"], done.stdout
    allow = set(rules[0]["allow"])
    assert {"127.0.0.1", "198.51.100.0/24"} <= allow <= {"127.0.0.1", "::1", "198.51.100.0/24"}, done.stdout
