"""playbooks/update.yml's wave planning (filter_plugins/fleet.py), its parity with site.yml, the release module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.modules import load_file

REPO = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    return load_file(path, name)


# Under its own dotted path, so that mutmut (make mutation) finds the tests that reach each of its functions.
fleet = _load("playbooks.filter_plugins.fleet", REPO / "playbooks/filter_plugins/fleet.py")
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


CLUSTERS = [f"c{i}" for i in range(1, 8)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # fleet_serial: counts of 1 or more, percentages above 0% up to 100%, a non-empty list of them.
        ({"serial": 0}, r"fleet_serial must be a whole number of clusters \(1 or more\) .* got 0$"),
        ({"serial": -1}, r"fleet_serial .* got -1$"),
        ({"serial": "0"}, r"fleet_serial .* got '0'$"),
        ({"serial": [1, 0]}, r"fleet_serial .* got 0$"),
        ({"serial": "abc"}, r"fleet_serial .* got 'abc'$"),
        ({"serial": [1, "abc"]}, r"fleet_serial .* got 'abc'$"),
        ({"serial": "0%"}, r"fleet_serial .* or a percentage \(above 0%, at most 100%\), got '0%'$"),
        ({"serial": "-5%"}, r"fleet_serial .* got '-5%'$"),
        ({"serial": "101%"}, r"fleet_serial .* got '101%'$"),
        ({"serial": "50 %"}, r"fleet_serial .* got '50 %'$"),
        ({"serial": 2.5}, r"fleet_serial .* got 2.5$"),
        ({"serial": "2.5"}, r"fleet_serial .* got '2.5'$"),
        ({"serial": True}, r"fleet_serial .* got True$"),
        ({"serial": [1, None]}, r"fleet_serial .* got None$"),
        ({"serial": [[1]]}, r"fleet_serial .* got \[1\]$"),
        ({"serial": []}, r"^fleet_serial must not be an empty list: give at least one count or percentage$"),
        # fleet_canary and fleet_max_wave: the same sizes.
        ({"serial": 1, "canary": 0}, r"^fleet_canary must be a whole number of clusters \(1 or more\) .* got 0$"),
        ({"serial": 1, "canary": "x"}, r"^fleet_canary .* got 'x'$"),
        ({"serial": 1, "canary": "0%"}, r"^fleet_canary .* got '0%'$"),
        ({"serial": 1, "max_wave": 0}, r"^fleet_max_wave must be a whole number of clusters \(1 or more\) .* got 0$"),
        ({"serial": 1, "max_wave": -3}, r"^fleet_max_wave .* got -3$"),
        ({"serial": 1, "max_wave": "all"}, r"^fleet_max_wave .* got 'all'$"),
        # fleet_waves: a non-empty list of non-empty lists of names, every cluster of the run once.
        ({"waves": []}, r"^fleet_waves must be a non-empty list of waves, each a list of cluster names, got \[\]$"),
        ({"waves": "c1"}, r"^fleet_waves must be a non-empty list .* got 'c1'$"),
        ({"waves": {"w": ["c1"]}}, r"^fleet_waves must be a non-empty list .* got \{'w': \['c1'\]\}$"),
        ({"waves": [[]]}, r"^fleet_waves: a wave must be a non-empty list of cluster names, got \[\]$"),
        ({"waves": [CLUSTERS, []]}, r"^fleet_waves: a wave must be .* got \[\]$"),
        ({"waves": CLUSTERS}, r"^fleet_waves: a wave must be .* got 'c1'$"),
        ({"waves": [[*CLUSTERS, 3]]}, r"^fleet_waves: a wave must be .* got \['c1', .*, 3\]$"),
        (
            {"waves": [["c1", "x"], CLUSTERS[1:]]},
            r"^fleet_waves must name every cluster of the run once \(the inventory's clusters, after --limit\): "
            r"unknown \['x'\], missing \[\], twice \[\]$",
        ),
        ({"waves": [CLUSTERS[1:]]}, r"unknown \[\], missing \['c1'\], twice \[\]$"),
        ({"waves": [CLUSTERS, ["c2"]]}, r"unknown \[\], missing \[\], twice \['c2'\]$"),
        (
            {"waves": [CLUSTERS], "canary": 1},
            r"^fleet_canary and fleet_waves exclude each other: name the canary's wave instead$",
        ),
        # fleet_resume_from: an update report.
        (
            {"resume_from": {"c1": "updated"}},
            r"^fleet_resume_from must be an update report \{\"clusters\": .* got \{'c1'",
        ),
        ({"resume_from": {"clusters": ["c1"]}}, r"^fleet_resume_from must be an update report .*, got \{'clusters'"),
        ({"resume_from": []}, r"^fleet_resume_from must be an update report .*, got \[\]$"),
        (
            {"resume_from": {"clusters": {"c1": {"outcome": "done"}}}},
            r"^fleet_resume_from: cluster 'c1' has the outcome 'done', expected one of "
            r"\['updated', 'rolled back', 'unreachable', 'failed', 'not started'\]$",
        ),
        ({"resume_from": {"clusters": {"c2": "updated"}}}, r"^fleet_resume_from: cluster 'c2' has the outcome None"),
        ({"resume_from": '{"clusters": '}, r"^fleet_resume_from: the report is not JSON \(Expecting value: "),
        ({"resume_from": "/nonexistent/report.json"}, r"^fleet_resume_from: cannot read the report '/nonexistent/"),
    ],
)
def test_a_bad_plan_is_refused_with_what_is_allowed(arguments, message):
    with pytest.raises(fleet.AnsibleFilterError, match=message):
        fleet.fleet_waves(CLUSTERS, **arguments)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (
            -1,
            r"^fleet_failure_budget must be a whole number of clusters \(0 or more\) or a percentage "
            r"\(0%, at most 100%\), got -1$",
        ),
        ("abc", r"^fleet_failure_budget .* got 'abc'$"),
        ("101%", r"^fleet_failure_budget .* got '101%'$"),
        (1.5, r"^fleet_failure_budget .* got 1.5$"),
        (None, r"^fleet_failure_budget .* got None$"),
    ],
)
def test_a_bad_failure_budget_is_refused(budget, message):
    with pytest.raises(fleet.AnsibleFilterError, match=message):
        fleet.fleet_plan([["h1", "c1"]], failure_budget=budget)


@pytest.mark.parametrize(
    ("arguments", "sizes"),
    [
        # Today's default: 1, 2, then half the fleet at a time; fleet_max_wave caps it.
        ({"serial": [1, 2, "50%"]}, [1, 2, 500, 497]),
        ({"serial": [1, 2, "50%"], "max_wave": 25}, [1, 2, *[25] * 39, 22]),
        ({"serial": [1, 2, "50%"], "max_wave": "10%"}, [1, 2, *[100] * 9, 97]),
        # A canary share, then the serial's waves.
        ({"canary": "1%", "serial": ["5%"], "max_wave": 25}, [10, *[25] * 39, 15]),
        ({"canary": 3, "serial": [100]}, [3, *[100] * 9, 97]),
        ({"canary": "0.05%", "serial": "100%"}, [1, 999]),
        ({"canary": 1, "serial": 400, "max_wave": 500}, [1, 400, 400, 199]),
        # Percentages of the clusters, rounded down (29% of 1,000 is 290, not 289), at least one cluster.
        ({"serial": "29%"}, [290, 290, 290, 130]),
        ({"serial": "0.01%"}, [1] * 1000),
        ({"serial": ["100%"]}, [1000]),
        ({"serial": None}, [1000]),
        ({"serial": " 600 "}, [600, 400]),
        ({"serial": 1000, "max_wave": 1000}, [1000]),
        ({"serial": 1000, "max_wave": "100%"}, [1000]),
    ],
)
def test_wave_sizes_of_a_thousand_clusters(arguments, sizes):
    clusters = [f"c{i}" for i in range(1000)]
    waves = fleet.fleet_waves(clusters, **arguments)
    assert [len(wave) for wave in waves] == sizes
    assert [cluster for wave in waves for cluster in wave] == clusters


def test_the_failure_budget_is_per_wave_and_never_the_whole_wave():
    hosts = [[f"h{i}", f"c{i}"] for i in range(1, 31)]
    for budget, budgets in (
        (0, [0, 0, 0, 0]),
        (2, [0, 1, 2, 1]),
        ("10%", [0, 0, 2, 0]),
        ("50%", [0, 1, 12, 1]),
        ("100%", [0, 1, 24, 1]),
        ("0%", [0, 0, 0, 0]),
    ):
        plan = fleet.fleet_plan(hosts, serial=[1, 2, 25], failure_budget=budget)
        assert plan["failure_budgets"] == budgets, budget
        assert plan["batch_sizes"] == [1, 2, 25, 2]
    assert fleet.fleet_plan(hosts, serial=10)["failure_budgets"] == [0, 0, 0]


def _report(**outcomes: str) -> dict:
    return {"clusters": {name: {"outcome": outcome, "wave": 1} for name, outcome in outcomes.items()}}


def test_a_run_resumes_from_a_report_skipping_the_updated_clusters(tmp_path: Path):
    report = _report(c1="updated", c2="updated", c3="rolled back", c4="unreachable", c5="failed", gone="updated")
    report["clusters"]["c6"] = {"outcome": "not started", "wave": 4}
    assert fleet.fleet_waves(CLUSTERS, [1, 2], resume_from=report) == [["c3"], ["c4", "c5"], ["c6", "c7"]]
    # Percentages are of the clusters left: 50% of 5 is 2.
    assert fleet.fleet_waves(CLUSTERS, "50%", resume_from=report) == [["c3", "c4"], ["c5", "c6"], ["c7"]]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert fleet.fleet_waves(CLUSTERS, 10, resume_from=str(path)) == [["c3", "c4", "c5", "c6", "c7"]]
    assert fleet.fleet_waves(CLUSTERS, 10, resume_from=f" {json.dumps(report)}") == [["c3", "c4", "c5", "c6", "c7"]]
    # Nothing to resume from: every cluster.
    for nothing in (None, "", _report(), {"clusters": {}, "time": "x"}):
        assert fleet.fleet_waves(CLUSTERS, 10, resume_from=nothing) == [CLUSTERS]
    # Explicit waves: the updated clusters are left out, and a wave left empty.
    waves = [["c1", "c2"], ["c3", "c4"], ["c5", "c6", "c7"]]
    assert fleet.fleet_waves(CLUSTERS, None, waves, resume_from=report) == [["c3", "c4"], ["c5", "c6", "c7"]]
    plan = fleet.fleet_plan([[f"h{c}", c] for c in CLUSTERS], serial=2, resume_from=report)
    assert plan["skipped"] == ["c1", "c2"]
    assert plan["waves"] == [["c3", "c4"], ["c5", "c6"], ["c7"]]
    assert plan["wave_of"] == {"c3": 1, "c4": 1, "c5": 2, "c6": 2, "c7": 3}
    everything = _report(**dict.fromkeys(CLUSTERS, "updated"))
    assert fleet.fleet_plan([[f"h{c}", c] for c in CLUSTERS], serial=2, resume_from=everything) == {
        "waves": [],
        "hosts": [],
        "batch_sizes": [],
        "failure_budgets": [],
        "wave_of": {},
        "skipped": CLUSTERS,
    }


def test_the_plan_passes_the_canary_and_the_cap_on():
    hosts = [[f"h{c}", c] for c in CLUSTERS]
    assert fleet.fleet_plan(hosts, serial=4, canary=2, max_wave=3)["batch_sizes"] == [2, 3, 2]
    assert fleet.fleet_waves(CLUSTERS, 3, max_wave=1) == [[cluster] for cluster in CLUSTERS]
    assert fleet.fleet_waves(CLUSTERS, 3, max_wave="1%") == [[cluster] for cluster in CLUSTERS]


def test_ansible_finds_both_filters():
    assert fleet.FilterModule().filters() == {"fleet_waves": fleet.fleet_waves, "fleet_plan": fleet.fleet_plan}


def test_explicit_waves_are_kept_as_named():
    waves = [["c7"], ["c1", "c2", "c3", "c4", "c5", "c6"]]
    assert fleet.fleet_waves(CLUSTERS, [1], waves, max_wave=2) == waves
    assert fleet.fleet_waves(["c1", "c1", "c2"], 1) == [["c1"], ["c2"]]
    plan = fleet.fleet_plan([["a1", "a"], ["b1", "b"], ["a2", "a"]], ["a2"], None, [["b"], ["a"]], failure_budget=1)
    assert plan == {
        "waves": [["b"], ["a"]],
        "hosts": ["b1", "a2", "a1"],
        "batch_sizes": [1, 2],
        "failure_budgets": [0, 0],
        "wave_of": {"b": 1, "a": 2},
        "skipped": [],
    }


def _plan_of_the_play(clusters: int, **variables) -> dict:
    """The plan as update.yml's first play computes it: its own expression and defaults, for two-node clusters."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import filter_loader
    from ansible.template import Templar, trust_as_template

    from tests import ansible_render  # the plugin loader, as ansible-playbook sets it up

    filter_loader.add_directory(str(REPO / "playbooks/filter_plugins"))
    play = yaml.safe_load((REPO / "playbooks/update.yml").read_text())[0]
    expression = play["tasks"][0]["ansible.builtin.set_fact"]["fleet_plan"]
    hosts = [f"c{i}-{kind}" for i in range(clusters) for kind in ("claw", "crush")]
    known = {
        "ansible_play_hosts_all": hosts,
        "hostvars": {host: {"appliance_cluster": host.split("-")[0]} for host in hosts},
        "groups": {"crush": [host for host in hosts if host.endswith("-crush")]},
    }
    templar = Templar(loader=DataLoader(), variables={**known, **ansible_render.trusted(variables)})
    return templar.template(trust_as_template(expression))


def test_the_plays_defaults_keep_a_thousand_clusters_in_waves_of_25():
    plan = _plan_of_the_play(1000)
    assert [len(wave) for wave in plan["waves"]] == [1, 2, *[25] * 39, 22]
    assert plan["batch_sizes"] == [2, 4, *[50] * 39, 44]
    assert plan["hosts"][:4] == ["c0-crush", "c0-claw", "c1-crush", "c1-claw"]
    assert set(plan["failure_budgets"]) == {0}
    plan = _plan_of_the_play(
        1000, fleet_canary="1%", fleet_serial=["5%"], fleet_max_wave=100, fleet_failure_budget="4%"
    )
    assert [len(wave) for wave in plan["waves"]] == [10, *[50] * 19, 40]
    assert plan["failure_budgets"] == [0, *[2] * 19, 1]


def test_the_play_passes_explicit_waves_and_the_report(tmp_path: Path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report(c0="updated", c1="failed")))
    plan = _plan_of_the_play(3, fleet_waves=[["c2"], ["c0", "c1"]], fleet_resume_from=str(report))
    assert plan["waves"] == [["c2"], ["c1"]] and plan["skipped"] == ["c0"]
    with pytest.raises(Exception, match="fleet_waves must be a non-empty list"):
        _plan_of_the_play(3, fleet_waves=[])


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
    needs = {
        "default_ipv4": "network",
        "all_ipv4_addresses": "network",
        "interfaces": "network",
        "processor_vcpus": "hardware",
    }
    used = set()
    sources = [
        *REPO.glob("roles/*/defaults/main.yml"),
        *REPO.glob("roles/*/vars/main.yml"),
        *REPO.glob("roles/*/tasks/*.yml"),
    ]
    for path in [*sources, REPO / "playbooks/group_vars/all.yml"]:
        text = path.read_text(encoding="utf-8")
        used |= {fact for fact in needs if f"'{fact}'" in text or f".{fact}" in text or f"{fact}." in text}
    assert used == set(needs)
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


@pytest.mark.parametrize(("node", "expected"), [("claw", ["base", "nodejs"]), ("crush", ["base"])])
def test_an_image_bakes_the_offline_roles_of_its_node_composition(node: str, expected: list[str]):
    """The images follow the same compositions: the roles of playbooks/nodes/<kind>.yml that can run in an offline
    root, in that order (the others run on the booted device)."""
    from tests.ansible_render import Node

    assert Node(["image"], image_node=node).value("_image_roles") == expected
