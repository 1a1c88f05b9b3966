"""benchmarks/perf/fleet.py's pure helpers: fleet sizes, the inventory it writes, the table and its verdict; and its
--scale mode end to end with one and two stand-in clusters (seconds, no container).

The container benchmark itself needs containers and minutes; it is run by `make bench-fleet`, never judged here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import pytest

from tests.modules import load_file

PERF = Path(__file__).resolve().parents[2] / "benchmarks" / "perf"


def load(name: str, path: Path):
    # Registered in sys.modules: fleet.py's `from perfutil import` finds perfutil there.
    return load_file(path, name)


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


# --scale: the controller's cost per cluster on stand-in clusters (tests/fleet_stand_in.py), no container.


def scale_run(clusters: int, controller_cpu: float, wall: float = 0.0) -> fleet.ScaleRun:
    return fleet.ScaleRun(clusters, wall or clusters * 2.0, controller_cpu, clusters * 3.0, 70.0, 33, 1.5, 2.5)


def test_scale_table_per_cluster_costs_and_their_ratios():
    runs = [scale_run(50, 100.0), scale_run(200, 440.0), scale_run(200, 400.0), scale_run(200, 900.0)]
    rows, verdict = fleet.scale_table(runs)
    assert [(row.clusters, row.runs) for row in rows] == [(50, 1), (200, 3)]
    assert rows[0].cpu_ms_per_cluster == 2000.0 and rows[0].cpu_ratio == 1.0 and rows[0].wall_ms_per_cluster == 2000.0
    assert rows[1].controller_cpu_s == 440.0  # the median run's
    assert rows[1].cpu_ms_per_cluster == 2200.0 and math.isclose(rows[1].cpu_ratio, 1.1)
    assert verdict == "PASS: the controller's CPU per cluster at 200 clusters is 1.10x that at 50 (target <= 1.5x)"


def test_scale_verdict_is_the_worst_size():
    rows, verdict = fleet.scale_table([scale_run(50, 100.0), scale_run(200, 640.0), scale_run(1000, 2900.0)])
    assert [round(row.cpu_ratio, 2) for row in rows] == [1.0, 1.6, 1.45]
    assert verdict.startswith("MISS: the controller's CPU per cluster at 200 clusters is 1.60x that at 50")
    assert fleet.scale_table([scale_run(50, 100.0), scale_run(100, 300.0)])[1].startswith("PASS")  # 1.5x passes
    assert fleet.scale_table([scale_run(50, 100.0)])[1] == "" and fleet.scale_table([]) == ([], "")


def test_format_scale_table():
    rows, _ = fleet.scale_table([scale_run(50, 100.0), scale_run(200, 440.0)])
    lines = fleet.format_scale_table(rows).splitlines()
    assert lines[0].split()[:2] == ["clusters", "wall"] and len(lines) == 3
    assert lines[2].split()[:7] == ["200", "400.0", "440.0", "2200", "2000", "1.10", "1.00"]


def test_node_cpu_seconds_sums_the_times_lines():
    text = "0m0.010000s 0m0.002000s\n0m0.150000s 0m0.030000s\n0m0.01s 0m0.00s\n1m2.5s 0m0.5s\n"
    assert math.isclose(fleet.node_cpu_seconds(text), 0.01 + 0.002 + 0.15 + 0.03 + 0.01 + 62.5 + 0.5)
    assert fleet.node_cpu_seconds("") == 0.0


@pytest.mark.ansible
@pytest.mark.skipif(os.geteuid() != 0, reason="the stand-in nodes' records are written owned by root")
def test_scale_mode_runs_update_yml_over_stand_in_clusters(tmp_path, monkeypatch, capsys):
    """The real update.yml over 1 and 2 stand-in clusters: the table's rows and every node on the new release."""
    monkeypatch.setattr(fleet, "SCALE_STATE", tmp_path / "scale")
    monkeypatch.setattr(fleet, "settings", lambda: {"forks": "20"})  # two ansible-config runs saved (parse_dump above)
    report = tmp_path / "scale.json"
    assert fleet.main(["--scale", "1,2", "--json", str(report), "--keep"]) == 0
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert [row["clusters"] for row in data["table"]] == [1, 2]
    assert data["table"][0]["cpu_ratio"] == 1.0
    for row in data["table"]:
        assert row["controller_cpu_s"] > 0 and row["nodes_cpu_s"] > 0 and row["peak_rss_mib"] > 0
        assert math.isclose(row["cpu_ms_per_cluster"], 1000 * row["controller_cpu_s"] / row["clusters"])
        assert 0 < row["main_ms_per_cluster"] < row["cpu_ms_per_cluster"]  # ansible-playbook's own share
    assert data["verdict"].startswith(("PASS", "MISS")) and data["verdict"] in out
    # One cluster's node also runs the run_once tasks; of two, the second runs only its own.
    assert data["runs"][0]["tasks_per_node"] > data["runs"][1]["tasks_per_node"] > 20
    assert "load average" in data["facts"] and "container runtime" not in data["facts"]
    # scale_wave checked each node (check_updated); the kept stand-ins say the same.
    for count in (1, 2):
        for node in range(1, count + 1):
            root = tmp_path / "scale" / str(count) / f"node-{node}"
            assert (root / "app/current").readlink().name == "2.0"
            assert json.loads((root / "state/last-update.json").read_text())["result"] == "applied"
        assert (tmp_path / "scale" / str(count) / "node-cpu").stat().st_size > 0
    assert fleet.format_scale_table(fleet.scale_table([])[0]).startswith("clusters")


def test_check_updated_names_a_stale_node(tmp_path):
    fleet.scale_fleet(tmp_path / "f", 2)
    with pytest.raises(fleet.BenchError, match="node-1"):
        fleet.check_updated(tmp_path / "f", 2)
