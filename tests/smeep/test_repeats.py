"""Repeats: the pass@1 / pass^k estimator, its place in the results, and seeds and temperature per trial."""

from __future__ import annotations

import json

import pytest
from smeep import cli, results, stats
from smeep.journal import Journal
from smeep.tasks import TASKS


def test_pass_hat_k_is_the_chance_that_k_draws_all_pass():
    assert stats.pass_hat_k(4, 2, 1) == 0.5
    assert stats.pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert stats.pass_hat_k(4, 2, 3) == 0
    assert stats.pass_hat_k(5, 5, 5) == 1
    with pytest.raises(ValueError):
        stats.pass_hat_k(3, 2, 4)


def test_reliability_averages_over_tasks_and_gives_the_spread_between_repeats():
    summary = stats.reliability([[True, True, False, False], [True, True, True, True], []])
    assert summary["pass_at_1"] == 0.75
    assert summary["pass_hat_k"] == {"1": 0.75, "2": pytest.approx((1 / 6 + 1) / 2, abs=1e-4), "3": 0.5, "4": 0.5}
    assert summary["per_repeat"] == [1.0, 1.0, 0.5, 0.5]
    assert summary["spread"] == {"min": 0.5, "max": 1.0, "stdev": pytest.approx(0.2887, abs=1e-4)}


def test_results_summary_carries_pass_at_1_and_pass_hat_k():
    statuses = {"t1-ping": ["PASS", "FAIL", "PASS"], "t1-math": ["PASS"] * 3, "t2-list": ["SKIP"] * 3}
    rows = [
        {"model": "m", "id": task_id, "trial": n, "status": status, "ms": 10, "seed": 40 + n, "temperature": 0.7}
        for task_id, trials in statuses.items()
        for n, status in enumerate(trials, 1)
    ]
    document = results.build({}, [TASKS[t] for t in statuses], ["m"], rows)
    summary = document["summary"]["m"]
    assert summary["pass_at_1"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-4)
    assert summary["pass_hat_k"] == {"1": summary["pass_at_1"], "2": pytest.approx(2 / 3, abs=1e-4), "3": 0.5}
    assert summary["per_repeat"] == [1.0, 0.5, 1.0]
    assert [t["seed"] for t in document["runs"]["m"]["t1-ping"]["trials"]] == [41, 42, 43]


def test_repeats_record_the_seed_and_temperature_of_every_trial(router, tmp_path):
    out = tmp_path / "r.json"
    router.requests.clear()
    argv = ["ladder", "--tasks", "t1-ping,t2-write", "--engine", router.url, "--model", "router", "--repeats", "3",
            "--seed", "7", "--temperature", "0.5", "--output", str(out), "--no-progress", "--no-plots"]  # fmt: skip
    assert cli.main(argv) == 0
    trials = [r for r in Journal(out.with_suffix(".jsonl")).read()[1] if r["id"] == "t1-ping"]
    assert [(r["trial"], r["seed"], r["temperature"]) for r in trials] == [(1, 7, 0.5), (2, 8, 0.5), (3, 9, 0.5)]
    sent = [body["options"] for method, path, body in router.requests if path == "/api/chat"]
    assert {o["seed"] for o in sent} == {7, 8, 9} and {o["temperature"] for o in sent} == {0.5}
    doc = json.loads(out.read_text())
    assert (doc["trials"], doc["seed"], doc["temperature"]) == (3, 7, 0.5)
    assert [t["seed"] for t in doc["runs"]["router"]["t2-write"]["trials"]] == [7, 8, 9]
    summary = doc["summary"]["router"]
    assert summary["pass_at_1"] == 1.0 and summary["pass_hat_k"] == {"1": 1.0, "2": 1.0, "3": 1.0}
    assert summary["spread"] == {"min": 1.0, "max": 1.0, "stdev": 0.0}
    markdown = out.with_suffix(".md").read_text()
    assert "| router | 1.000 | 1.000 | 1.000 | 1.000-1.000 (0.000) |" in markdown
    assert "temperature 0.5, seed 7" in markdown
