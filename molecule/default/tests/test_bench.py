"""SMEEP on the cluster: playbooks/bench.yml runs the quick ladder and a throughput run from claw against the
real crush engine and fetches the results to the controller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.nodes import run_playbook

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
STATUSES = {"PASS", "FAIL", "ERR", "TIMEOUT", "SKIP", "LOAD_FAIL"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bench")
    run = run_playbook(PLAYBOOKS / "bench.yml", {"bench_results_dir": str(directory), "bench_max_tokens": 48})
    assert run.rc == 0 and run.failed == 0, run.output
    return directory


def test_quick_ladder_results_are_fetched_with_their_method(results):
    ladder = json.loads((results / "molecule-claw-ladder-quick.json").read_text())
    assert ladder["schema"] == "smeep-results/1" and ladder["models"] == ["gemma3-270m"]
    assert {test["tier"] for test in ladder["tests"]} == {1, 2}
    runs = ladder["runs"]["gemma3-270m"]
    assert set(runs) == {test["id"] for test in ladder["tests"]}
    assert {run["status"] for run in runs.values()} <= STATUSES
    # A real engine answered: every task ran (no ERR/LOAD_FAIL from an unreachable crush).
    assert not [tid for tid, run in runs.items() if run["status"] in {"ERR", "LOAD_FAIL"}], runs
    assert ladder["hardware"]["cpu_cores"] >= 1 and ladder["engine"]["url"].endswith(":8080/v1")
    summary = ladder["summary"]["gemma3-270m"]
    assert 0 <= summary["pass_rate"] <= 1 and summary["eligible"] == len(runs)
    assert (results / "molecule-claw-ladder-quick.md").read_text().count("gemma3-270m") >= 1


def test_throughput_of_the_real_engine(results):
    throughput = json.loads((results / "molecule-claw-throughput.json").read_text())["throughput"]["gemma3-270m"]
    assert throughput["status"] == "PASS", throughput
    assert throughput["gen_tok_s"]["median"] > 0 and throughput["ttft_ms"]["median"] > 0
