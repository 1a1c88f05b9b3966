"""playbooks/update.yml's wave planning (filter_plugins/fleet.py), its parity with site.yml, the release module."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fleet = _load("fleet_filters", REPO / "playbooks/filter_plugins/fleet.py")
release_links = _load("release_links", REPO / "roles/release/library/release_links.py")


@pytest.mark.parametrize(
    ("serial", "waves"),
    [
        ([1, 2, "50%"], [["c1"], ["c2", "c3"], ["c4", "c5", "c6"], ["c7"]]),
        ([1], [["c1"], ["c2"], ["c3"], ["c4"], ["c5"], ["c6"], ["c7"]]),
        ("100%", [["c1", "c2", "c3", "c4", "c5", "c6", "c7"]]),
        ([1, "10%"], [["c1"], ["c2"], ["c3"], ["c4"], ["c5"], ["c6"], ["c7"]]),
        (3, [["c1", "c2", "c3"], ["c4", "c5", "c6"], ["c7"]]),
        (None, [["c1", "c2", "c3", "c4", "c5", "c6", "c7"]]),
    ],
)
def test_serial_counts_clusters_like_a_plays_serial(serial, waves):
    assert fleet.fleet_waves([f"c{i}" for i in range(1, 8)], serial) == waves


def test_explicit_waves_must_name_every_cluster_once():
    assert fleet.fleet_waves(["a", "b", "c"], None, [["b"], ["a", "c"]]) == [["b"], ["a", "c"]]
    for waves in ([["a"], ["b"]], [["a"], ["b", "c", "x"]], [["a", "b"], ["b", "c"]]):
        with pytest.raises(Exception, match="every cluster"):
            fleet.fleet_waves(["a", "b", "c"], None, waves)


def test_the_plan_keeps_a_clusters_nodes_in_one_wave_crush_first():
    hosts = [["lab-claw", "lab"], ["lab-crush", "lab"], ["s-claw", "studio"], ["s-crush", "studio"]]
    hosts.append(["o-claw", "office"])
    plan = fleet.fleet_plan(hosts, ["lab-crush", "s-crush"], [1, 2])
    assert plan["waves"] == [["lab"], ["studio", "office"]]
    assert plan["hosts"] == ["lab-crush", "lab-claw", "s-crush", "s-claw", "o-claw"]
    assert plan["batch_sizes"] == [2, 3]


def _node_files(tasks: list[dict], key: str) -> list[str]:
    """The node compositions (playbooks/nodes/*.yml) that ``tasks`` bring in with ``key``, in order."""
    return [Path(task[key]).name for task in tasks if key in task]


def test_site_yml_and_a_wave_apply_the_same_node_compositions_in_the_same_order():
    """The roles of a node kind are listed once (playbooks/nodes/); site.yml's plays import those lists and a wave of
    the fleet's update includes the same ones, in the same order, so the two can never drift apart."""
    site = []
    for imported in yaml.safe_load((REPO / "playbooks/site.yml").read_text()):
        if "ansible.builtin.import_playbook" in imported:
            for play in yaml.safe_load((REPO / "playbooks" / imported["ansible.builtin.import_playbook"]).read_text()):
                assert "roles" not in play, "a node play composes its roles in playbooks/nodes/, not inline"
                site += _node_files(play.get("tasks", []), "ansible.builtin.import_tasks")
    wave = _node_files(
        yaml.safe_load((REPO / "playbooks/tasks/provision.yml").read_text()), "ansible.builtin.include_tasks"
    )
    assert site == wave == ["common.yml", "crush.yml", "claw.yml"]
    composed = [path.name for path in (REPO / "playbooks/nodes").glob("*.yml")]
    assert sorted(composed) == sorted(site)


def test_a_wave_gathers_the_facts_the_roles_read():
    """site.yml gathers every fact; a wave must gather at least those the roles' defaults read, or it installs
    something else (an empty openclaw_allowed_sources closes the gateway's port to the LAN)."""
    used = set()
    for path in [*REPO.glob("roles/*/defaults/main.yml"), *REPO.glob("roles/*/tasks/*.yml")]:
        text = path.read_text(encoding="utf-8")
        used |= {fact for fact in ("default_ipv4", "all_ipv4_addresses", "processor_vcpus") if fact in text}
    assert used == {"default_ipv4", "all_ipv4_addresses", "processor_vcpus"}
    needs = {"default_ipv4": "network", "all_ipv4_addresses": "network", "processor_vcpus": "hardware"}
    play = yaml.safe_load((REPO / "playbooks/update.yml").read_text())[1]
    assert play["gather_facts"] is True
    assert {needs[fact] for fact in used} <= set(play["gather_subset"])


def test_the_release_module_switches_links_and_units_back(tmp_path: Path):
    root, units = tmp_path / "claw", tmp_path / "units"
    for release in ("1.0-aaa", "1.1-bbb"):
        (root / "releases" / release / "venv/bin").mkdir(parents=True)
    units.mkdir()
    (root / "current").symlink_to(root / "releases/1.1-bbb")
    unit = units / "claw-leds.service"
    unit.write_text(f"[Service]\nExecStart={root}/releases/1.1-bbb/venv/bin/claw leds daemon\n")
    (units / "other.service").write_text(f"ExecStart={root}/releases/1.1-bbbx/venv/bin/x\n")
    components = [{"name": "claw_apps", "root": str(root), "units": ["absent.service"]}]
    bom = tmp_path / "bom.json"
    bom.write_text(json.dumps({"components": {"claw_apps": {"release": "1.0-aaa", "previous": ""}}}))
    found = release_links.query(components, str(bom))
    assert found["claw_apps"]["release"] == "1.1-bbb" and found["claw_apps"]["previous"] == "1.0-aaa"
    switched, restart = release_links.switch(components, {"claw_apps": "1.0-aaa"}, units, check=False)
    assert (root / "current").readlink() == root / "releases/1.0-aaa"
    assert switched == {
        "claw_apps": {
            "from": str(root / "releases/1.1-bbb"),
            "to": str(root / "releases/1.0-aaa"),
            "state_restored": [],
        }
    }
    assert restart == ["claw-leds.service"]
    assert f"{root}/releases/1.0-aaa/venv/bin/claw" in unit.read_text()
    assert "1.1-bbbx" in (units / "other.service").read_text()  # another release's path is left alone
    assert release_links.switch(components, {"claw_apps": "1.0-aaa"}, units, check=False) == ({}, [])
    with pytest.raises(ValueError, match="not installed"):
        release_links.switch(components, {"claw_apps": "9.9-zzz"}, units, check=False)


def test_the_release_module_keeps_and_restores_the_state_each_release_migrated(tmp_path: Path):
    root, units, state = tmp_path / "openclaw", tmp_path / "units", tmp_path / "var/state"
    for release in ("2026.9.5", "2026.9.6"):
        (root / "releases" / release).mkdir(parents=True)
    units.mkdir()
    state.mkdir(parents=True)
    (state / "openclaw.sqlite").write_text("schema 17")
    (root / "current").symlink_to(root / "releases/2026.9.5")
    components = [{"name": "openclaw", "root": str(root), "units": [], "state": [str(state)]}]

    # Before an update: 2026.9.5's state is kept; then 2026.9.6 starts and migrates it.
    assert release_links.save_state(components, {"openclaw": "2026.9.5"}, check=False) == {"openclaw": [str(state)]}
    release_links.switch(components, {"openclaw": "2026.9.6"}, units, check=False)
    (state / "openclaw.sqlite").write_text("schema 18")
    (state / "new-in-18").write_text("x")

    # The rollback puts 2026.9.5's state back and keeps 2026.9.6's for going forward again.
    switched, _ = release_links.switch(components, {"openclaw": "2026.9.5"}, units, check=False, with_state=True)
    assert switched["openclaw"]["state_restored"] == [str(state)]
    assert sorted(p.name for p in state.iterdir()) == ["openclaw.sqlite"]
    assert (state / "openclaw.sqlite").read_text() == "schema 17"
    switched, _ = release_links.switch(components, {"openclaw": "2026.9.6"}, units, check=False, with_state=True)
    assert (state / "openclaw.sqlite").read_text() == "schema 18" and (state / "new-in-18").exists()
    # A release without a saved copy keeps the state in use; check mode changes nothing.
    assert release_links.restore_state(components[0], "2026.9.6", "2025.1.1", check=False) == []
    assert release_links.restore_state(components[0], "2026.9.6", "2026.9.5", check=True) == [str(state)]
    assert (state / "openclaw.sqlite").read_text() == "schema 18"
