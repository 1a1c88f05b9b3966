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


# SMEEP through the real agent path (issue 22, item 2): one real task with `--driver openclaw` on the claw node, through
# the real gateway and the real MCP servers. The model is the scripted double (conftest's scripted_model: Gemma 270M
# cannot call tools), which knows this task's own prompt and asks for the tool it needs (through OpenClaw's Tool
# Search, as OpenClaw offers its MCP tools); everything between is real.
SMEEP_DIR = "/var/tmp/smeep"  # where playbooks/bench.yml put the package (the `results` fixture ran it)
SMEEP_PYTHON = "/opt/claw/current/venv/bin/python"
DOUBLE_URL = "http://127.0.0.1:8099/v1"


@pytest.mark.usefixtures("scripted_model")
def test_a_real_task_runs_end_to_end_through_the_openclaw_gateway(claw, results):
    """The day-of-week task via `openclaw agent --agent open`: the time server's day_of_week through OpenClaw's MCP
    wiring, the answer checked against the calendar, the results naming the driver, the agent and OpenClaw's tool."""
    output = f"{SMEEP_DIR}/openclaw-weekday.json"
    before = json.loads(claw.check_output(f"curl -fsS {DOUBLE_URL}/requests"))["count"]
    run = claw.run(
        f"cd {SMEEP_DIR} && PYTHONPATH={SMEEP_DIR}/lib timeout 300 {SMEEP_PYTHON} -m smeep.cli suite "
        "--driver openclaw --agent open --model scripted/scripted --tasks sched-weekday "
        f"--engine {DOUBLE_URL} --api openai --no-preload --no-progress --no-plots --output {output}"
    )
    assert run.rc == 0, run.stdout + run.stderr
    document = json.loads(claw.check_output(f"cat {output}"))
    assert (document["driver"], document["agent"]) == ("openclaw", "open")
    entry = document["runs"]["scripted/scripted"]["sched-weekday"]
    # PASS by its check: the reply names the true weekday of 2031-02-14 (and no other), the day_of_week tool was used.
    assert entry["status"] == "PASS", entry
    # OpenClaw's toolSummary: the time server's tool by OpenClaw's MCP name, reached through its Tool Search
    # (`tool_call`, left out of the names; OpenClaw counts it as a call of its own), none failed.
    assert entry["tool_names"] == ["time__day_of_week"] and entry["tools"] in (1, 2), entry
    # The double asked for the tool and was answered with its result, through the gateway.
    requests = json.loads(claw.check_output(f"curl -fsS {DOUBLE_URL}/requests"))["requests"][before:]
    assert len(requests) >= 2 and any("tool" in request["roles"] for request in requests), requests
