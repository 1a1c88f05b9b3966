"""The published notebook: `python -m smeep.publish` (`make smeep-results`) writes benchmarks/smeep/results/.

For the demo model (Gemma 3 270M Q4_K_M, the GGUF roles/llamacpp caches on the controller) it starts the real
engine (llama-cpp-python's OpenAI-compatible server from `smeep quantise`'s offline venv), or uses `--engine URL`
(on an appliance: the crush engine), and runs, all through the `smeep` command line:

- the ladder and the suite with the direct driver, `--repeats` times (pass@1, pass^k);
- the ladder and the suite with the OpenClaw driver, only when `--openclaw CMD` (or $SMEEP_OPENCLAW) names the
  OpenClaw CLI that reaches a gateway; otherwise the notebook says, in its manifest and its README, that that run
  was not made here and why;
- throughput (TTFT, prompt and generation tokens/s, the engine's memory);
- `smeep quantise` (Q4_0, Q4_K_M, Q8_0 from the one GGUF), where llama.cpp's wheel is cached.

It records the environment (llama.cpp build, CPU flags, Python and package versions, load average, commit) and
writes the raw JSON, the Markdown tables and the PNG plots, with upstream's published ladder beside ours as a
labelled comparison row (smeep.upstream). `write_notebook` renders the tables and plots from what is on disk, so a
notebook can be re-rendered without re-running it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from smeep import cli, metadata, quantise, report, upstream
from smeep import plots as smeep_plots

SCHEMA = "smeep-notebook/1"
RESULTS = Path(__file__).with_name("results")
DEMO_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
ALIAS = "gemma3-270m"
PACKAGES = ("smeep", "picocluster-claw", "matplotlib", "httpx", "anyio", "mcp", "numpy")
SUITES = ("ladder", "suite")
OPENCLAW_ENV = "SMEEP_OPENCLAW"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smeep-publish", description="Regenerate the published SMEEP notebook")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the notebook directory (default {RESULTS})")
    parser.add_argument("--gguf", type=Path, help="the model (default: the demo model in the controller cache)")
    parser.add_argument("--engine", help="a running engine to use (e.g. crush's .../v1) instead of starting one")
    parser.add_argument("--api", choices=("auto", "ollama", "openai"), default="auto")
    parser.add_argument("--model", default=ALIAS, help=f"the model's name at the engine (default {ALIAS})")
    parser.add_argument("--repeats", type=int, default=3, help="trials per task, both drivers (default 3)")
    parser.add_argument("--max-tokens", type=int, default=96, help="cap on each model turn (direct driver)")
    parser.add_argument("--chat-format", default="gemma", help="llama-cpp-python chat format of the started engine")
    parser.add_argument("--threads", type=int, default=quantise._usable_cpus(), help="llama.cpp CPU threads")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context size of the started engine")
    parser.add_argument("--no-quantise", action="store_true", help="leave the quantisation comparison out")
    parser.add_argument("--quant-trials", type=int, default=1, help="ladder trials per quantisation type")
    parser.add_argument("--work", type=Path, help="scratch: quantised GGUFs, logs (default <cache>/smeep-publish)")
    parser.add_argument("--openclaw", default=os.environ.get(OPENCLAW_ENV), help=f"OpenClaw CLI (or ${OPENCLAW_ENV})")
    parser.add_argument("--openclaw-model", help="the model as the gateway names it (default --model)")
    parser.add_argument("--provider", default="local", help="OpenClaw provider prefix for a bare model name")
    parser.add_argument("--agent", default="main", help="the OpenClaw agent")
    parser.add_argument("--workspace", type=Path, help="the OpenClaw agent's file tools' directory")
    parser.add_argument("--no-plots", action="store_true", help="no PNGs (no matplotlib on the node)")
    parser.add_argument("--render-only", action="store_true", help="re-render tables and plots from --out, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        written = write_notebook(args.out, plots=not args.no_plots)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
        return 0
    work = args.work or quantise.cache_dir() / "smeep-publish"
    work.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["smeep-publish", *(sys.argv[1:] if argv is None else argv)])
    loads_before = list(os.getloadavg())
    try:
        with engine(args, work) as (url, api, pid, llama):
            runs = [run_suite(args, suite, "direct", url, api) for suite in SUITES]
            runs += [run_suite(args, suite, "openclaw", url, api) for suite in SUITES]
            speed = run_throughput(args, url, api, pid)
        quant = run_quantise(args, work)
    except quantise.QuantiseError as err:
        print(f"smeep publish: {err}", file=sys.stderr)
        return 1
    manifest = {
        "schema": SCHEMA,
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "model": {"name": args.model, "gguf": _gguf_record(args), "engine": "started here" if pid else args.engine},
        "settings": {"repeats": args.repeats, "max_tokens": args.max_tokens, "chat_format": args.chat_format},
        "runs": runs,
        "throughput": speed,
        "quantise": quant,
        "environment": "environment.json",
        "upstream": "upstream-ladder.json",
    }
    env = environment(llama, loads_before)
    (args.out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    (args.out / "notebook.json").write_text(json.dumps(manifest, indent=2) + "\n")
    written = write_notebook(args.out, plots=not args.no_plots)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    failed = [r["name"] for r in runs if not r["ran"] and (r["driver"] == "direct" or args.openclaw)]
    if failed:
        print(f"smeep publish: {', '.join(failed)} did not run", file=sys.stderr)
    return 1 if failed or (not quant["ran"] and not quant["reason"]) else 0


# --- the runs ----------------------------------------------------------------------------------------------------


def demo_gguf() -> Path:
    return quantise.cache_dir() / "models" / f"{DEMO_SHA256}.gguf"


def _gguf_record(args: argparse.Namespace) -> dict[str, Any] | None:
    path = args.gguf or (None if args.engine else demo_gguf())
    if path is None or not path.is_file():
        return None
    header = quantise.gguf_metadata(path)
    return {
        "name": header.get("general.name"),
        "type": quantise.ftype_name(header.get("general.file_type")),
        "sha256": DEMO_SHA256 if path.stem == DEMO_SHA256 else quantise._sha256(path),
        "size_bytes": path.stat().st_size,
    }


@contextmanager
def engine(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, str, int | None, dict[str, Any] | None]]:
    """(URL, API, pid or None, llama.cpp's versions or None): the given engine, or llama-cpp-python's server started
    on the demo model from `smeep quantise`'s offline venv."""
    if args.engine:
        yield args.engine, args.api, None, None
        return
    gguf = args.gguf or demo_gguf()
    if not gguf.is_file():
        raise quantise.QuantiseError(f"{gguf}: no such GGUF (a converge of the crush node caches the demo model)")
    python, wheel = _llama_python()
    llama = {**quantise.worker(python, "info"), "wheel": wheel.name, "wheel_key": wheel.parent.name}
    info = wheel.parent / "build-info.json"
    llama["build"] = json.loads(info.read_text()) if info.is_file() else None
    settings = argparse.Namespace(n_ctx=args.n_ctx, threads=args.threads, chat_format=args.chat_format)
    with quantise.server(python, gguf, args.model, settings, work / "server.log") as (url, pid):
        yield url, "openai", pid, llama


def _llama_python() -> tuple[Path, Path]:
    wheel = quantise.find_wheel()
    if wheel is None:
        raise quantise.QuantiseError(
            "no llama-cpp-python wheel in the controller cache: a converge of the crush node (roles/llamacpp) builds it"
        )
    cache = quantise.cache_dir()
    return quantise.ensure_venv(cache / "smeep-quant-venv", wheel, [cache / "lock-wheels"]), wheel


def _smeep(argv: list[str]) -> int:
    print("smeep " + shlex.join(argv), file=sys.stderr)
    return cli.main(argv)


def run_suite(args: argparse.Namespace, suite: str, driver: str, url: str, api: str) -> dict[str, Any]:
    name = f"{suite}-{driver}"
    record: dict[str, Any] = {"name": name, "suite": suite, "driver": driver, "results": f"{name}.json"}
    if driver == "openclaw" and not args.openclaw:
        _remove(args.out, name)
        return {
            **record,
            "results": None,
            "ran": False,
            "reason": (
                "not run here: no OpenClaw CLI was given (--openclaw CMD or $SMEEP_OPENCLAW). The OpenClaw driver "
                "sends every task through a running OpenClaw gateway with the appliance's MCP servers, LED daemon "
                "and time server, which this host does not run; playbooks/bench.yml makes this run on an appliance's "
                "claw node (bench_publish=true)."
            ),
        }
    argv = [suite, "--engine", url, "--api", api, "--model", args.model, "--repeats", str(args.repeats),
            "--max-tokens", str(args.max_tokens), "--output", str(args.out / record["results"]), "--no-progress",
            "--no-preload", "--no-plots"]  # fmt: skip
    if driver == "openclaw":
        argv[argv.index("--model") + 1] = args.openclaw_model or args.model
        argv += ["--driver", "openclaw", "--openclaw", args.openclaw, "--provider", args.provider]
        argv += ["--agent", args.agent] + (["--workspace", str(args.workspace)] if args.workspace else [])
    if _smeep(argv) != 0:
        return {**record, "ran": False, "reason": f"smeep {suite} exited non-zero"}
    return {**record, "ran": True}


def run_throughput(args: argparse.Namespace, url: str, api: str, pid: int | None) -> dict[str, Any]:
    argv = ["throughput", "--engine", url, "--api", api, "--model", args.model, "--trials", str(args.repeats),
            "--max-tokens", "64", "--output", str(args.out / "throughput.json"), "--no-plots"]  # fmt: skip
    argv += ["--engine-pid", str(pid)] if pid else []
    ran = _smeep(argv) == 0
    return {"results": "throughput.json" if ran else None, "ran": ran}


def run_quantise(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """`smeep quantise` into the scratch directory (the GGUFs stay out of the repository); its JSON and Markdown and
    each type's ladder results are copied into the notebook's quantise/."""
    target = args.out / "quantise"
    gguf = args.gguf or demo_gguf()
    reason = None
    if args.no_quantise:
        reason = "left out (--no-quantise)"
    elif not gguf.is_file():
        reason = f"no GGUF here ({gguf}): quantisation runs where llama.cpp's wheel and the model are cached"
    elif quantise.find_wheel() is None:
        reason = "no llama-cpp-python wheel cached on this host: quantisation runs on the controller"
    if reason:
        shutil.rmtree(target, ignore_errors=True)
        return {"ran": False, "reason": reason, "results": None}
    scratch = work / "quantise"
    shutil.rmtree(scratch, ignore_errors=True)
    argv = ["quantise", "--gguf", str(gguf), "--chat-format", args.chat_format, "--out", str(scratch),
            "--trials", str(args.quant_trials), "--max-tokens", str(args.max_tokens), "--threads", str(args.threads),
            "--no-progress"]  # fmt: skip
    if _smeep(argv) != 0:
        return {"ran": False, "reason": "smeep quantise exited non-zero", "results": None}
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in sorted(scratch.iterdir()):
        if path.suffix in (".json", ".md", ".jsonl") and path.is_file():
            shutil.copy2(path, target / path.name)
    return {"ran": True, "reason": None, "results": "quantise/smeep-quantise.json"}


def _remove(out: Path, name: str) -> None:
    for path in out.glob(f"{name}*"):
        if path.is_file():
            path.unlink()


# --- the environment ---------------------------------------------------------------------------------------------


def environment(llama: dict[str, Any] | None, loads_before: list[float]) -> dict[str, Any]:
    """What the numbers depend on: the CPU and its flags, the engine's build, the versions, the load on the host."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "schema": "smeep-environment/1",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": metadata.hardware(),
        "cpu_flags_simd": quantise.cpu_flags(),
        "cpu_flags": _all_cpu_flags(),
        "usable_cpus": quantise._usable_cpus(),
        "load_average": {"before": loads_before, "after": list(os.getloadavg())},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "packages": versions,
        "llama_cpp": llama,
        "commit": _commit(),
    }


def _all_cpu_flags(proc: Path = Path("/proc")) -> list[str]:
    try:
        for line in (proc / "cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return sorted(value.split())
    except OSError:
        pass
    return []


def _commit() -> dict[str, Any] | None:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return {"head": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


# --- the notebook: tables and plots from what is on disk ---------------------------------------------------------


def _load(out: Path, name: str | None) -> dict[str, Any] | None:
    path = out / name if name else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def upstream_rows(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The comparison rows: upstream's published ones, each labelled as upstream's, then ours from `document`."""
    data = upstream.LADDER
    rows = [
        {"label": data["label"], "model": r["model"], "passes": r["passes"], "total": r["total"], "pass_at_1": None,
         "driver": data["harness"], "hardware": data["hardware"]}
        for r in data["rows"]
    ]  # fmt: skip
    hw = (document or {}).get("hardware", {})
    for model, summary in ((document or {}).get("summary") or {}).items():
        rows.append({
            "label": "measured here", "model": model, "passes": summary["passes"], "total": summary["eligible"],
            "pass_at_1": summary.get("pass_at_1"), "driver": f"SMEEP {document.get('driver')} driver, "
            f"{document.get('trials')} repeat(s)", "hardware": f"{hw.get('cpu_model')}, {hw.get('cpu_cores')} CPUs",
        })  # fmt: skip
    return rows


def upstream_markdown(rows: list[dict[str, Any]]) -> str:
    data = upstream.LADDER
    lines = [
        "| source | model | driver / harness | hardware | ladder | pass@1 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        label = f"**{row['label']}**" if row["label"] == upstream.LABEL else row["label"]
        p1 = "-" if row["pass_at_1"] is None else f"{row['pass_at_1']:.2f}"
        lines.append(f"| {label} | {row['model']} | {row['driver']} | {row['hardware']} | "
                     f"{row['passes']}/{row['total']} | {p1} |")  # fmt: skip
    lines += ["", f"Upstream's rows: {data['source']} {data['caveat']}", ""]
    return "\n".join(lines)


def write_notebook(out: Path, plots: bool = True) -> list[Path]:
    """README.md (the notebook), upstream-ladder.json, ladder-vs-upstream.md and every PNG (each run's pass rate and
    latency, throughput, the comparison with upstream, quantisation speed), from notebook.json and the results it
    names in `out`: the runs themselves draw nothing, so a node without matplotlib runs with --no-plots and the
    controller renders (--render-only)."""
    manifest = _load(out, "notebook.json")
    if manifest is None:
        raise FileNotFoundError(out / "notebook.json")
    env = _load(out, manifest.get("environment")) or {}
    written = []
    (out / "upstream-ladder.json").write_text(json.dumps(upstream.LADDER, indent=2) + "\n")
    written.append(out / "upstream-ladder.json")
    ladders = [_load(out, r["results"]) for r in manifest["runs"] if r["suite"] == "ladder" and r["ran"]]
    rows = upstream_rows(ladders[0] if ladders else None)
    for extra in ladders[1:]:
        rows += upstream_rows(extra)[len(upstream.LADDER["rows"]) :]
    comparison = upstream_markdown(rows)
    (out / "ladder-vs-upstream.md").write_text("## SMEEP ladder beside upstream's published table\n\n" + comparison)
    written.append(out / "ladder-vs-upstream.md")
    quant = _load(out, (manifest.get("quantise") or {}).get("results"))
    speed = _load(out, (manifest.get("throughput") or {}).get("results"))
    if plots:
        for run in manifest["runs"]:
            document = _load(out, run["results"]) if run["ran"] else None
            if document is not None:
                written += smeep_plots.results_plots([("", document)], out / Path(run["results"]).stem)
        if speed:
            written += smeep_plots.throughput_plots([("", speed)], out / "throughput")
        written.append(comparison_plot(rows, out / "ladder-vs-upstream.png"))
        if quant:
            written.append(quantise_plot(quant, out / "quantise" / "quantise-speed.png"))
    readme = notebook_markdown(manifest, env, comparison, quant, out)
    (out / "README.md").write_text(readme)
    written.append(out / "README.md")
    return written


def _environment_markdown(env: dict[str, Any]) -> list[str]:
    hw, llama = env.get("hardware", {}), env.get("llama_cpp") or {}
    loads = env.get("load_average") or {}
    build = llama.get("build") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
    commit = env.get("commit") or {}
    lines = [
        "| | |",
        "|---|---|",
        f"| CPU | {hw.get('cpu_model')}, {hw.get('cpu_cores')} CPUs ({env.get('usable_cpus')} usable), "
        f"{hw.get('ram_mib')} MiB RAM, {hw.get('machine')}, kernel {hw.get('kernel')} |",
        f"| SIMD flags | {' '.join(env.get('cpu_flags_simd') or []) or '-'} |",
        f"| load average (1/5/15 min) | before {_triple(loads.get('before'))}, after {_triple(loads.get('after'))} |",
        f"| Python | {(env.get('python') or {}).get('version')} |",
        f"| packages | {packages or '-'} |",
    ]
    if llama:
        lines += [
            f"| llama.cpp | llama-cpp-python {llama.get('llama_cpp_python')}, libllama {llama.get('llama_version')}, "
            f"wheel {llama.get('wheel_key')} (CPU level {build.get('cpu_baseline', '?')}) |",
            f"| llama.cpp system info | {_cell(llama.get('system_info'))} |",
        ]
    else:
        lines.append("| engine | not started here (given with --engine); its version is in each results file |")
    if commit:
        dirty = " + uncommitted changes" if commit.get("dirty") else ""
        lines.append(f"| commit | {commit.get('head', '?')[:12]}{dirty} |")
    return [*lines, "", "All of it, with every CPU flag: [environment.json](environment.json).", ""]


def _cell(value: Any) -> str:
    """A Markdown table cell: llama.cpp's system info separates its features with pipes."""
    return str(value).replace("|", "\\|")


def _triple(values: list[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "-"


def notebook_markdown(
    manifest: dict[str, Any],
    env: dict[str, Any],
    comparison: str,
    quant: dict[str, Any] | None,
    out: Path,
) -> str:
    model, settings = manifest.get("model", {}), manifest.get("settings", {})
    gguf = model.get("gguf") or {}
    title = f"{model.get('name')} ({gguf.get('name')}, {gguf.get('type')})" if gguf else model.get("name")
    started = model.get("engine") == "started here"
    engine = (
        f"llama-cpp-python's OpenAI server started here on the GGUF (sha256 {str(gguf.get('sha256'))[:12]}), "
        f"chat format {settings.get('chat_format')}"
        if started
        else f"{model.get('engine')} (given)"
    )
    lines = [
        f"# SMEEP notebook: {title}",
        "",
        f"Generated {manifest.get('timestamp')} by `{manifest.get('command')}` (`make smeep-results`); every number "
        f"here comes from the raw JSON beside it. Do not edit: regenerate. Engine: {engine}; "
        f"{settings.get('repeats')} repeat(s) per task; --max-tokens {settings.get('max_tokens')}.",
        "",
        "## Environment",
        "",
        *_environment_markdown(env),
    ]
    for suite, title in (("ladder", "Ladder (T1-T4, 10 tasks)"), ("suite", "Suite (30 tasks)")):
        lines += [f"## {title}", ""]
        for run in (r for r in manifest["runs"] if r["suite"] == suite):
            lines += [f"### Driver `{run['driver']}`", ""]
            document = _load(out, run["results"]) if run["ran"] else None
            if document is None:
                lines += [f"**Not run.** {run.get('reason') or 'no results file'}", ""]
                continue
            stem = Path(run["results"]).stem
            trials, seed = document.get("trials"), document.get("seed")
            seeds = f"seeds {seed}-{seed + trials - 1}" if isinstance(seed, int) and trials else "the agent's own seed"
            lines += [f"{trials} repeat(s), temperature {document.get('temperature')}, {seeds}; started "
                      f"{document.get('timestamp')}.", ""]  # fmt: skip
            lines += [report.results_table(document), ""]
            reliability = report.reliability_table(document)
            lines += [reliability, ""] if reliability else []
            failed = {m: s["failed"] for m, s in document["summary"].items()}
            raw = f"[{stem}.json]({stem}.json), table [{stem}.md]({stem}.md), journal [{stem}.jsonl]({stem}.jsonl)"
            lines += [f"Failed: {', '.join(f'{m}: {len(f)} tasks' for m, f in failed.items())}. Raw: {raw}.", ""]
            if (out / f"{stem}-pass-rate.png").is_file():
                lines += [f"![{stem} pass rate]({stem}-pass-rate.png) ![{stem} latency]({stem}-latency.png)", ""]
        if suite == "ladder":
            lines += ["### Beside upstream's published ladder", "", comparison]
            if (out / "ladder-vs-upstream.png").is_file():
                lines += ["![ladder beside upstream](ladder-vs-upstream.png)", ""]
    speed = _load(out, (manifest.get("throughput") or {}).get("results"))
    lines += ["## Throughput through the engine's API", ""]
    lines += [*report.throughput_markdown(speed).splitlines()[2:-2], ""] if speed else ["Not run.", ""]
    if speed and (out / "throughput-tokens.png").is_file():
        lines += ["![throughput](throughput-tokens.png)", ""]
    lines += ["## Quantisation (Q4_0, Q4_K_M, Q8_0 from the one GGUF)", ""]
    if quant:
        body = quantise.markdown(quant).splitlines()[2:]
        lines += [*body, "Raw: [quantise/smeep-quantise.json](quantise/smeep-quantise.json); each type's ladder: "
                  "quantise/ladder-<TYPE>.json.", ""]  # fmt: skip
        if (out / "quantise" / "quantise-speed.png").is_file():
            lines += ["![quantisation speed](quantise/quantise-speed.png)", ""]
    else:
        lines += [f"**Not run.** {(manifest.get('quantise') or {}).get('reason')}", ""]
    lines += [
        "## Regenerate",
        "",
        "`make smeep-results` (this host: starts llama.cpp on the cached demo model); on an appliance "
        "`ansible-playbook -i inventory/demo playbooks/bench.yml -e bench_publish=true` runs the same script on the "
        "claw node against the crush engine, with the OpenClaw driver, and fetches the notebook to "
        "`.cache/bench/notebook/`. `python -m smeep.publish --render-only` re-renders this page from the JSON.",
        "",
    ]
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def comparison_plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Ladder pass fraction per model: upstream's published rows hatched and labelled as upstream's."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4), dpi=90)
    labels, values = [], []
    for index, row in enumerate(rows):
        mine = row["label"] != upstream.LABEL
        value = row["passes"] / row["total"] if row["total"] else 0.0
        ax.barh(index, value, color="tab:blue" if mine else "lightgrey", hatch=None if mine else "//",
                edgecolor="black", linewidth=0.5)  # fmt: skip
        ax.text(value + 0.01, index, f"{row['passes']}/{row['total']}", va="center", fontsize=8)
        labels.append(f"{'here' if mine else 'upstream'}: {row['model']}")
        values.append(value)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("ladder pass fraction")
    ax.set_title(f"SMEEP ladder; grey, hatched: {upstream.LABEL}", fontsize=9)
    data = upstream.LADDER
    fig.text(0.01, 0.01, f"upstream: {data['harness']}, {data['hardware'].split(' (')[0]}; as quoted in "
             "issue #22", fontsize=6.5)  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def quantise_plot(document: dict[str, Any], path: Path) -> Path:
    """Prompt and generation tokens/s per type, median with min-max whiskers."""
    plt = _pyplot()
    kinds = list(document.get("quantisations", {}))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    panels = (("prompt_tok_s", "prompt tokens/s"), ("gen_tok_s", "generation tokens/s"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        spreads = [document["quantisations"][k]["speed"][key] for k in kinds]
        medians = [s["median"] or 0 for s in spreads]
        low = [m - (s["min"] or m) for m, s in zip(medians, spreads, strict=True)]
        high = [(s["max"] or m) - m for m, s in zip(medians, spreads, strict=True)]
        ax.bar(kinds, medians, yerr=[low, high], capsize=4, color="tab:green")
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"llama.cpp speed per quantisation, {document.get('hardware', {}).get('cpu_model')}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
