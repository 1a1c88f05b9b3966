"""The published notebook (benchmarks/smeep/results/, `make smeep-results`): the committed files validate against
the schema and are what the writer renders from their JSON, `compare` of two committed runs renders, the writer works
on a small synthetic notebook, upstream's rows are labelled as upstream's with their source, and the publish script
runs end to end against the fake engine (no real model)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from smeep import cli, publish, results, schema, upstream
from smeep.tasks import TASKS

NOTEBOOK = Path(publish.__file__).with_name("results")
PNG = b"\x89PNG\r\n\x1a\n"


def committed(name: str) -> dict:
    return json.loads((NOTEBOOK / name).read_text())


def test_every_committed_json_file_validates_against_its_schema():
    files = sorted(NOTEBOOK.rglob("*.json"))
    names = {str(p.relative_to(NOTEBOOK)) for p in files}
    assert {"notebook.json", "environment.json", "upstream-ladder.json", "ladder-direct.json", "suite-direct.json",
            "throughput.json", "quantise/smeep-quantise.json"} <= names  # fmt: skip
    for path in files:
        assert schema.errors(json.loads(path.read_text())) == [], path


def test_the_schema_rejects_what_it_should():
    ladder = committed("ladder-direct.json")
    assert schema.errors(ladder) == []
    broken = copy.deepcopy(ladder)
    model = broken["models"][0]
    broken["runs"][model]["t1-ping"]["status"] = "OK"
    del broken["summary"][model]["pass_at_1"]
    broken["trials"] = 0
    found = schema.errors(broken)
    assert any("'OK' is not one of" in e for e in found) and any("pass_at_1" in e for e in found)
    assert any(e.startswith("trials:") for e in found)
    manifest = committed("notebook.json")
    manifest["runs"][0] = {**manifest["runs"][0], "ran": False, "reason": None}  # not made, and no word why
    assert any("reason" in e or "None is not of type" in e for e in schema.errors(manifest))
    manifest["quantise"] = {"ran": False, "results": None}
    assert any("'reason' is a required property" in e for e in schema.errors(manifest))
    assert schema.errors({"schema": "smeep-results/9"}) == ["unknown schema 'smeep-results/9'"]


def test_the_notebook_holds_every_run_with_tables_plots_and_the_environment():
    manifest = committed("notebook.json")
    runs = {(r["suite"], r["driver"]): r for r in manifest["runs"]}
    assert set(runs) == {(s, d) for s in ("ladder", "suite") for d in ("direct", "openclaw")}
    readme = (NOTEBOOK / "README.md").read_text()
    for run in runs.values():
        if run["ran"]:
            stem = Path(run["results"]).stem
            document = committed(run["results"])
            assert document["driver"] == run["driver"] and document["trials"] == manifest["settings"]["repeats"]
            assert (NOTEBOOK / f"{stem}.md").is_file() and (NOTEBOOK / f"{stem}.jsonl").is_file()
            for suffix in ("pass-rate", "latency"):
                assert (NOTEBOOK / f"{stem}-{suffix}.png").read_bytes().startswith(PNG)
        else:  # a run not made here says so, and why, in the manifest and on the page
            assert run["driver"] == "openclaw" and "OpenClaw" in run["reason"]
            assert run["reason"] in readme
    assert runs[("ladder", "direct")]["ran"] and runs[("suite", "direct")]["ran"]
    assert manifest["quantise"]["ran"], manifest["quantise"]
    quant = committed("quantise/smeep-quantise.json")
    assert list(quant["quantisations"]) == ["Q4_0", "Q4_K_M", "Q8_0"]
    for entry in quant["quantisations"].values():
        assert (NOTEBOOK / "quantise" / entry["score"]["results"]).is_file()
    assert not list(NOTEBOOK.rglob("*.gguf")) and not list(NOTEBOOK.rglob("*.log"))
    env = committed("environment.json")
    assert env["cpu_flags"] and env["llama_cpp"]["llama_version"] and env["packages"]["smeep"]
    assert env["load_average"]["before"] and env["load_average"]["after"]
    for png in NOTEBOOK.rglob("*.png"):
        assert png.read_bytes().startswith(PNG) and png.stat().st_size < 200_000, png


def test_the_committed_page_is_what_the_writer_renders_from_the_committed_json(tmp_path):
    """No hand-edited number: re-rendering the committed JSON gives the committed Markdown, byte for byte."""
    copy_dir = tmp_path / "results"
    shutil.copytree(NOTEBOOK, copy_dir)
    assert publish.main(["--out", str(copy_dir), "--render-only", "--no-plots"]) == 0
    for name in ("README.md", "ladder-vs-upstream.md", "upstream-ladder.json"):
        assert (copy_dir / name).read_text() == (NOTEBOOK / name).read_text(), name
    ladder = committed("ladder-direct.json")
    for model, summary in ladder["summary"].items():
        row = f"| measured here | {model} | SMEEP direct driver, {ladder['trials']} repeat(s) |"
        assert row in (NOTEBOOK / "README.md").read_text()
        assert f"{summary['passes']}/{summary['eligible']} |" in (NOTEBOOK / "ladder-vs-upstream.md").read_text()


def test_compare_of_two_committed_runs_renders(tmp_path):
    output = tmp_path / "cmp.md"
    files = [NOTEBOOK / "ladder-direct.json", NOTEBOOK / "quantise" / "ladder-Q4_0.json"]
    assert cli.main(["compare", *map(str, files), "--output", str(output)]) == 0
    text = output.read_text()
    ours = committed("ladder-direct.json")
    model = ours["models"][0]
    summary = ours["summary"][model]
    assert f"| ladder-direct: {model} |" in text and "| ladder-Q4_0: " in text
    assert f"| {summary['passes']}/{summary['eligible']} |" in text
    assert (tmp_path / "cmp-pass-rate.png").read_bytes().startswith(PNG)


def test_upstreams_rows_are_labelled_as_upstreams_with_their_source():
    data = committed("upstream-ladder.json")
    assert data == upstream.LADDER and schema.errors(data) == []
    assert data["label"].startswith("upstream") and "issue #22" in data["source"]
    assert data["harness"] == "OpenClaw 2026.5.12 via LiteLLM" and "Orin Nano Super" in data["hardware"]
    assert {(r["model"], r["passes"], r["total"]) for r in data["rows"]} == {
        ("granite4.1:8b", 10, 10), ("qwen3.5:4b", 8, 10), ("nemotron-3-nano:4b", 6, 10), ("llama3.2:3b", 5, 10),
    }  # fmt: skip
    table = (NOTEBOOK / "ladder-vs-upstream.md").read_text()
    for row in data["rows"]:
        line = next(line for line in table.splitlines() if f"| {row['model']} |" in line)
        assert line.startswith(f"| **{upstream.LABEL}** |") and f"| {row['passes']}/{row['total']} |" in line
    assert data["source"] in table and data["source"] in (NOTEBOOK / "README.md").read_text()
    ours = [line for line in table.splitlines() if line.startswith("| measured here |")]
    assert ours and not any(upstream.LABEL in line for line in ours)


# --- the writer on a small synthetic notebook ------------------------------------------------------------------


def synthetic(out: Path) -> None:
    """Two ladder tasks over two repeats (one passes both, one passes once), OpenClaw and quantisation not run."""
    tasks = [TASKS["t1-ping"], TASKS["t2-list"]]
    rows = [
        {"model": "tiny", "id": task.id, "trial": n, "status": status, "ms": 100 * n, "reply": "r", "tools": 0,
         "seed": n - 1, "temperature": 0.0, "error": None if status == "PASS" else "no"}
        for task, statuses in zip(tasks, (["PASS", "PASS"], ["PASS", "FAIL"]), strict=True)
        for n, status in enumerate(statuses, 1)
    ]  # fmt: skip
    meta = {
        "timestamp": "2026-01-02 03:04 UTC", "smeep_version": "0", "command": "smeep ladder --model tiny",
        "hardware": {"cpu_model": "Test CPU", "cpu_cores": 2, "ram_mib": 1024, "machine": "x86_64",
                     "kernel": "6", "python": "3.11"},
        "driver": "direct", "agent": None, "trials": 2, "seed": 0, "temperature": 0.0,
        "engine": {"kind": "openai", "url": "http://e/v1", "version": None, "context_size": None, "api_key_env": None},
        "model_notes": {"tiny": {}},
    }  # fmt: skip
    document = results.build(meta, tasks, ["tiny"], rows)
    assert schema.errors(document) == []
    (out / "ladder-direct.json").write_text(json.dumps(document))
    reason = "not run here: no OpenClaw CLI was given, for the test"
    manifest = {
        "schema": publish.SCHEMA,
        "timestamp": "2026-01-02 03:04 UTC",
        "command": "smeep-publish --test",
        "model": {"name": "tiny", "gguf": None, "engine": "http://e/v1"},
        "settings": {"repeats": 2, "max_tokens": 8, "chat_format": None},
        "runs": [
            {"name": "ladder-direct", "suite": "ladder", "driver": "direct", "results": "ladder-direct.json",
             "ran": True},
            {"name": "suite-direct", "suite": "suite", "driver": "direct", "results": None, "ran": False,
             "reason": "smeep suite exited non-zero"},
            *({"name": f"{s}-openclaw", "suite": s, "driver": "openclaw", "results": None, "ran": False,
               "reason": reason} for s in ("ladder", "suite")),
        ],
        "throughput": {"ran": False, "results": None},
        "quantise": {"ran": False, "reason": "left out (--no-quantise)", "results": None},
        "environment": "environment.json",
        "upstream": "upstream-ladder.json",
    }  # fmt: skip
    assert schema.errors(manifest) == []
    (out / "notebook.json").write_text(json.dumps(manifest))
    (out / "environment.json").write_text(json.dumps(publish.environment(None, [1.0, 0.5, 0.25])))


def test_the_writer_renders_tables_and_plots_from_a_small_synthetic_notebook(tmp_path):
    synthetic(tmp_path)
    written = publish.write_notebook(tmp_path)
    assert {p.name for p in written} == {
        "upstream-ladder.json", "ladder-vs-upstream.md", "ladder-vs-upstream.png", "README.md",
        "ladder-direct-pass-rate.png", "ladder-direct-latency.png",
    }  # fmt: skip
    readme = (tmp_path / "README.md").read_text()
    assert "| tiny | 1/1 | 0/1 | 1/2 | 150 ms |" in readme  # T1, T2, total (a majority of repeats), median latency
    assert "| tiny | 0.750 | 0.500 | 0.500-1.000 (0.354) |" in readme  # pass@1, pass^2, spread between repeats
    assert readme.count("**Not run.** not run here: no OpenClaw CLI was given, for the test") == 2
    assert "**Not run.** smeep suite exited non-zero" in readme and "**Not run.** left out (--no-quantise)" in readme
    assert "| measured here | tiny | SMEEP direct driver, 2 repeat(s) | Test CPU, 2 CPUs | 1/2 | 0.75 |" in readme
    assert f"| **{upstream.LABEL}** | granite4.1:8b | OpenClaw 2026.5.12 via LiteLLM |" in readme
    assert "load average (1/5/15 min) | before 1.00 / 0.50 / 0.25" in readme
    assert (tmp_path / "ladder-vs-upstream.png").read_bytes().startswith(PNG)
    assert schema.errors(json.loads((tmp_path / "upstream-ladder.json").read_text())) == []


def test_the_writer_refuses_a_directory_without_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError):
        publish.write_notebook(tmp_path)


def test_the_quantisation_plot_draws_medians_with_their_spread(tmp_path):
    quant = committed("quantise/smeep-quantise.json")
    path = publish.quantise_plot(quant, tmp_path / "q.png")
    assert path.read_bytes().startswith(PNG) and path.stat().st_size < 200_000


# --- end to end against the fake engine --------------------------------------------------------------------------


def test_publish_runs_both_suites_and_records_the_openclaw_run_it_did_not_make(router, tmp_path, monkeypatch):
    monkeypatch.delenv(publish.OPENCLAW_ENV, raising=False)
    out = tmp_path / "nb"
    argv = ["--out", str(out), "--engine", router.url, "--model", "router", "--repeats", "1", "--no-quantise",
            "--no-plots", "--work", str(tmp_path / "work")]  # fmt: skip
    assert publish.main(argv) == 0
    manifest = json.loads((out / "notebook.json").read_text())
    assert schema.errors(manifest) == []
    ran = {r["name"]: r["ran"] for r in manifest["runs"]}
    assert ran == {"ladder-direct": True, "suite-direct": True, "ladder-openclaw": False, "suite-openclaw": False}
    ladder = json.loads((out / "ladder-direct.json").read_text())
    suite = json.loads((out / "suite-direct.json").read_text())
    assert ladder["summary"]["router"]["passes"] == 10 and suite["summary"]["router"]["passes"] == 30
    assert manifest["quantise"] == {"ran": False, "reason": "left out (--no-quantise)", "results": None}
    readme = (out / "README.md").read_text()
    assert "| measured here | router | SMEEP direct driver, 1 repeat(s) |" in readme and "| 10/10 | 1.00 |" in readme
    assert readme.count("**Not run.** not run here: no OpenClaw CLI was given") == 2
    env = json.loads((out / "environment.json").read_text())
    assert schema.errors(env) == [] and env["llama_cpp"] is None
