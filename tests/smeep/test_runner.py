"""Runs through the CLI against the fake: statuses, resume, the results schema, Markdown, PNGs and compare."""

from __future__ import annotations

import dataclasses
import json

import pytest
from smeep import cli, runner
from smeep.drivers import DirectDriver
from smeep.engines import make_engine
from smeep.journal import Journal
from smeep.runner import Plan, run_plan
from smeep.tasks import TASKS

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n"
QUICK = ["t1-ping", "t1-math", "t1-json", "t2-list", "t2-read", "t2-write"]


def test_ladder_quick_writes_schema_markdown_and_plots(router, tmp_path):
    out = tmp_path / "ladder.json"
    assert cli.main(["ladder", "--quick", "--engine", router.url, "--model", "router", "--trials", "2",
                     "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    for key in ("schema", "timestamp", "models", "tests", "runs", "summary", "hardware", "engine", "command",
                "smeep_version", "trials", "model_notes"):  # fmt: skip
        assert key in doc, key
    assert [t["id"] for t in doc["tests"]] == QUICK
    entry = doc["runs"]["router"]["t2-write"]
    for key in ("status", "ms", "reply", "tools", "input_tokens", "output_tokens", "error", "trials", "passes"):
        assert key in entry, key
    assert entry["status"] == "PASS" and entry["passes"] == 2 and len(entry["trials"]) == 2
    assert doc["summary"]["router"]["groups"] == {"T1": {"passes": 3, "total": 3}, "T2": {"passes": 3, "total": 3}}
    assert doc["engine"]["version"] == "0.0.0-fake"
    assert doc["model_notes"]["router"]["keep_alive"] == "5m"
    assert doc["hardware"]["cpu_cores"] and doc["hardware"]["ram_mib"]
    markdown = out.with_suffix(".md").read_text()
    assert "| router | 3/3 | 3/3 | 6/6 |" in markdown
    for suffix in ("pass-rate", "latency"):
        assert (tmp_path / f"ladder-{suffix}.png").read_bytes().startswith(PNG)

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**doc, "summary": {"other": doc["summary"]["router"]}}))
    compared = tmp_path / "cmp.md"
    assert cli.main(["compare", str(out), str(other), "--output", str(compared)]) == 0
    assert "ladder: router" in compared.read_text() and "other: other" in compared.read_text()
    assert (tmp_path / "cmp-pass-rate.png").read_bytes().startswith(PNG)


def test_evicts_and_preloads_with_keep_alive(router, tmp_path):
    router.requests.clear()
    router.loaded["other"] = 4096
    cli.main(["ladder", "--tasks", "t1-ping", "--engine", router.url, "--model", "router", "--keep-alive", "10m",
              "--output", str(tmp_path / "r.json"), "--no-progress", "--no-plots"])  # fmt: skip
    posts = [body for method, path, body in router.requests if (method, path) == ("POST", "/api/generate")]
    assert {"model": "other", "keep_alive": 0, "stream": False} in posts[:-1]
    assert posts[-1]["model"] == "router" and posts[-1]["keep_alive"] == "10m"


def test_resume_after_an_interrupted_run(router, tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    args = ["ladder", "--quick", "--engine", router.url, "--model", "router", "--output", str(out), "--no-progress",
            "--no-plots"]  # fmt: skip
    real = runner.run_one
    seen: list[str] = []

    async def crash_on_fourth(task, *rest):
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(task.id)
        return await real(task, *rest)

    monkeypatch.setattr(runner, "run_one", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        cli.main(args)
    assert [r["id"] for r in Journal(out.with_suffix(".jsonl")).read()[1]] == QUICK[:3]
    # A torn line from the crash is ignored.
    with out.with_suffix(".jsonl").open("a") as journal:
        journal.write('{"type": "result", "model": "rou')
    monkeypatch.setattr(runner, "run_one", real)
    seen.clear()

    async def counting(task, *rest):
        seen.append(task.id)
        return await real(task, *rest)

    monkeypatch.setattr(runner, "run_one", counting)
    assert cli.main([*args, "--resume"]) == 0
    assert seen == QUICK[3:]
    doc = json.loads(out.read_text())
    assert doc["summary"]["router"]["passes"] == 6
    assert "resumed_with" in doc


@pytest.mark.parametrize(("model", "status"), [("slow", "TIMEOUT"), ("broken", "ERR"), ("missing", "LOAD_FAIL")])
@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_statuses_from_the_engine(fake, tmp_path, model, status, api):
    task = dataclasses.replace(TASKS["t2-write"], timeout=1.0)
    engine = make_engine(fake.url + ("/v1" if api == "openai" else ""), api, timeout=10)
    journal = Journal(tmp_path / "j.jsonl")
    try:
        await run_plan(Plan([model], [task], preload=api == "ollama"), engine, DirectDriver(engine), journal)
    finally:
        await engine.aclose()
    [result] = journal.read()[1]
    assert result["status"] == status, result
    assert result["error"]


def test_summarise_statuses():
    assert runner.summarise_statuses(["PASS", "FAIL", "PASS"]) == "PASS"
    assert runner.summarise_statuses(["PASS", "TIMEOUT", "TIMEOUT"]) == "TIMEOUT"
    assert runner.summarise_statuses(["SKIP"]) == "SKIP"
