"""benchmarks/perf/fleet.py's pure helpers: fleet sizes, the inventory it writes, the table and its verdict.

The benchmark itself needs containers and minutes; it is run by `make bench-fleet`, never judged here.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import pytest

PERF = Path(__file__).resolve().parents[2] / "benchmarks" / "perf"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up; fleet.py's `from perfutil import` finds it here
    spec.loader.exec_module(module)
    return module


# Loaded by file, never by putting benchmarks/perf on sys.path: its mcp.py would shadow the MCP SDK.
load("perfutil", PERF / "perfutil.py")
# A name of its own: playbooks/filter_plugins/fleet.py is another `fleet`.
fleet = load("bench_fleet", PERF / "fleet.py")


def run(clusters: int, wall: float, cpu: float = 1.0) -> fleet.Run:
    return fleet.Run(clusters, "0.1.0.post1-abc", wall, cpu, 2 * cpu, nodes_cpu_s=cpu / 2)


def test_parse_counts_sorts_and_deduplicates():
    assert fleet.parse_counts("8,1,2,4,2") == [1, 2, 4, 8]
    assert fleet.parse_counts("3") == [3]


@pytest.mark.parametrize("text", ["", "0,1", "-1", "a,b", "1.5"])
def test_parse_counts_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        fleet.parse_counts(text)


def test_inventory_makes_one_node_clusters(tmp_path):
    inventory = fleet.inventory(3, tmp_path)["all"]
    children = inventory["children"]
    names = ["benchfleet-1", "benchfleet-2", "benchfleet-3"]
    assert list(children["claw"]["hosts"]) == names == list(children["crush"]["hosts"])
    assert children["claw"]["hosts"]["benchfleet-3"] == {"ansible_host": "10.89.79.13"}
    assert [list(children[f"cluster_c{i}"]["hosts"]) for i in (1, 2, 3)] == [[name] for name in names]
    assert fleet.cluster_names(3) == ["c1", "c2", "c3"]
    # What a wave applies is the fleet scenario's: the shared wave tasks (which must exist) with its light roles.
    assert Path(inventory["vars"]["fleet_update_tasks"]).is_file()
    assert inventory["vars"]["molecule_wave_roles"] == ["claw_apps", "leds"]
    assert inventory["vars"]["claw_apps_cache_dir"].startswith(str(tmp_path))


def test_demo_vars_name_own_network_and_nodes(tmp_path):
    present = fleet.demo_vars(2, tmp_path)
    assert present["demo_cluster_network"] == "benchfleet"
    assert [node["name"] for node in present["demo_cluster_nodes"]] == ["benchfleet-1", "benchfleet-2"]
    assert fleet.demo_vars(2, tmp_path, present=False)["demo_cluster_state"] == "absent"


def test_table_uses_the_median_and_the_ratio_to_one_cluster():
    runs = [run(1, 10.0), run(1, 30.0), run(1, 20.0), run(8, 50.0, cpu=5.0), run(8, 40.0, cpu=4.0), run(8, 90.0)]
    rows, verdict = fleet.table(runs)
    assert [(row.clusters, row.wall_s, row.runs) for row in rows] == [(1, 20.0, 3), (8, 50.0, 3)]
    assert rows[1].ratio == 2.5 and rows[1].per_cluster_s == 6.25
    assert rows[1].controller_cpu_s == 5.0  # the median run's, not a mix of runs
    assert verdict.startswith("PASS: 8 clusters take 2.50x one cluster")


def test_table_misses_above_the_target():
    rows, verdict = fleet.table([run(1, 10.0), run(2, 15.0), run(8, 31.0)])
    assert [round(row.ratio, 2) for row in rows] == [1.0, 1.5, 3.1]
    assert verdict.startswith("MISS: 8 clusters take 3.10x")
    assert fleet.table([run(1, 10.0), run(8, 30.0)])[1].startswith("PASS")  # the target itself passes
    assert fleet.table([run(1, 10.0), run(2, 12.0)])[1].endswith("the target is set for 8 clusters")


def test_no_verdict_without_one_cluster_and_a_larger_fleet():
    assert fleet.table([run(2, 10.0), run(4, 12.0)])[1] == ""
    assert fleet.table([run(1, 10.0)])[1] == ""
    assert fleet.table([]) == ([], "")


def test_format_table_shows_every_row():
    rows, _ = fleet.table([run(1, 10.0), run(2, 12.0)])
    lines = fleet.format_table(rows, cores=2).splitlines()
    assert lines[0].split()[:4] == ["clusters", "wall", "s", "ratio"] and len(lines) == 3
    assert lines[2].split()[:4] == ["2", "12.0", "1.20", "6.0"]
    assert lines[2].split()[5:8] == ["0.5", "6%", "8%"]  # 1.5 own and 2 busy s of 12 s x 2 cores


def test_parse_dump_reads_values_and_origins():
    text = "DEFAULT_FORKS(/x/ansible.cfg) = 20\nCACHE_PLUGIN(default) = memory\nOTHER(default) = 1\n"
    assert fleet.parse_dump(text, fleet.SETTINGS) == {"forks": "20", "fact cache": "memory"}
    assert math.isclose(fleet.TARGET_RATIO, 3.0)


def test_settings_to_compare():
    assert fleet.parse_setting("ANSIBLE_FORKS=5") == "ANSIBLE_FORKS=5"
    for bad in ["FORKS=5", "ANSIBLE_FORKS", "ANSIBLE_X Y=1"]:
        with pytest.raises(argparse.ArgumentTypeError):
            fleet.parse_setting(bad)


def test_compared_runs_stay_out_of_the_table():
    forks = fleet.Run(8, "r", 60.0, 9.0, 20.0, setting="ANSIBLE_FORKS=5")
    runs = [run(1, 10.0), run(8, 30.0), forks]
    rows, verdict = fleet.table(runs)
    assert [row.runs for row in rows] == [1, 1] and verdict.startswith("PASS")
    assert "ANSIBLE_FORKS=5" in fleet.format_compare(runs, rows)
    assert "2.00x the default" in fleet.format_compare(runs, rows)
    lonely = fleet.Run(4, "r", 60.0, 9.0, 20.0, setting="ANSIBLE_FORKS=5")
    assert "no default run of that size" in fleet.format_compare([lonely], rows)
