"""The `smeep` command line: ladder, suite, throughput, compare, tasks, quantise."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import anyio

from smeep import metadata, plots, quantise, report, results
from smeep.drivers import DirectDriver, OpenClawDriver
from smeep.engines import Engine, make_engine
from smeep.journal import Journal
from smeep.runner import Plan, Progress, run_plan
from smeep.tasks import LADDER, SUITE, select
from smeep.throughput import measure, process_rss_mib
from smeep.toolbox import Appliance

KEY_ENV = "SMEEP_API_KEY"


def _models(values: list[str]) -> list[str]:
    return [m for value in values for m in value.split(",") if m]


def _engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="http://127.0.0.1:11434", help="engine URL (Ollama root or .../v1)")
    parser.add_argument("--api", choices=("auto", "ollama", "openai"), default="auto", help="wire format")
    parser.add_argument("--model", action="append", required=True, help="model name; repeat or comma-separate")
    parser.add_argument(
        "--trials", "--repeats", type=int, default=1, help="repeat each task/measurement N times (pass@1, pass^k)"
    )
    parser.add_argument(
        "--api-key-env",
        help=f"environment variable holding the API key, sent as a bearer token (default {KEY_ENV}, if set)",
    )
    parser.add_argument("--keep-alive", default="5m", help="Ollama keep_alive for the loaded model")
    parser.add_argument("--num-ctx", type=int, help="context size to request (Ollama num_ctx)")
    parser.add_argument("--request-timeout", type=float, default=300.0, help="seconds per engine request")
    parser.add_argument("--output", type=Path, help="results JSON (Markdown and PNGs are written next to it)")
    parser.add_argument("--no-plots", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smeep", description="Small-model agent benchmarks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in (("ladder", "the 10-task T1-T4 tool-call ladder"), ("suite", "the 30-task capability suite")):
        sub = commands.add_parser(name, help=text)
        _engine_args(sub)
        sub.add_argument("--driver", choices=("direct", "openclaw"), default="direct")
        sub.add_argument("--openclaw", default="openclaw", help="the OpenClaw command (driver openclaw)")
        sub.add_argument("--provider", default="local", help="OpenClaw provider prefix for bare model names")
        sub.add_argument("--agent", default="main", help="the OpenClaw agent to run the tasks (driver openclaw)")
        sub.add_argument(
            "--workspace",
            type=Path,
            help="where the OpenClaw agent's file tools work (driver openclaw), e.g. the "
            "files server's sandbox /var/lib/claw-mcp/sandbox",
        )
        sub.add_argument(
            "--reminders-db",
            type=Path,
            default=Appliance.reminders,
            help="the time server's reminder database (driver openclaw)",
        )
        sub.add_argument(
            "--led-socket", type=Path, default=Appliance.led_socket, help="the LED daemon's socket (driver openclaw)"
        )
        sub.add_argument("--tasks", help="comma-separated task ids")
        sub.add_argument("--no-preload", action="store_true", help="do not evict and preload models")
        sub.add_argument("--resume", action="store_true", help="keep the journal and skip finished tasks")
        sub.add_argument("--no-progress", action="store_true")
        sub.add_argument("--max-tokens", type=int, default=512, help="cap on each model turn (direct driver)")
        sub.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (direct driver)")
        sub.add_argument("--seed", type=int, default=0, help="seed of repeat 1; repeat n uses seed + n - 1")
        if name == "ladder":
            sub.add_argument("--quick", action="store_true", help="tiers 1 and 2 only")
            sub.add_argument("--tiers", help="comma-separated tiers, e.g. 1,2")
        else:
            sub.add_argument("--categories", help="comma-separated categories")
    speed = commands.add_parser("throughput", help="tokens/s, TTFT, load time and memory per model")
    _engine_args(speed)
    speed.add_argument("--max-tokens", type=int, default=64)
    speed.add_argument("--engine-pid", type=int, help="local engine process id, for its resident memory")
    compare = commands.add_parser("compare", help="results or throughput files side by side")
    compare.add_argument("files", nargs="+", type=Path)
    compare.add_argument("--output", type=Path, default=Path("smeep-compare.md"))
    compare.add_argument("--no-plots", action="store_true")
    commands.add_parser("tasks", help="list the tasks")
    quant = commands.add_parser("quantise", help="quantise one GGUF to several types; speed, memory and score each")
    quantise.add_arguments(quant)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return 2
    if args.command == "tasks":
        for task in LADDER + SUITE:
            tier = f"T{task.tier}" if task.tier else "  "
            print(f"{task.id:18} {task.suite:6} {tier} {task.category:12} {task.mode:5} {task.name}")
        return 0
    if args.command == "compare":
        return compare(args)
    if args.command == "quantise":
        return quantise.run(args, argv)
    args.model = _models(args.model)
    if args.api_key_env and not os.environ.get(args.api_key_env):
        print(f"smeep: --api-key-env {args.api_key_env}: that variable is not set", file=sys.stderr)
        return 2
    if args.command == "throughput":
        return anyio.run(throughput, args, argv)
    return anyio.run(benchmark, args, argv)


def _engine(args: argparse.Namespace) -> Engine:
    return make_engine(
        args.engine,
        args.api,
        timeout=args.request_timeout,
        keep_alive=args.keep_alive,
        num_ctx=args.num_ctx,
        api_key=os.environ.get(_key_env(args)) or None,
    )


def _key_env(args: argparse.Namespace) -> str:
    return args.api_key_env or KEY_ENV


def _engine_meta(args: argparse.Namespace, engine: Engine, version: str | None) -> dict[str, Any]:
    """What the results say about the engine: the URL as given, and the key's variable (never the key)."""
    key = _key_env(args) if os.environ.get(_key_env(args)) else None
    return {
        "kind": engine.kind,
        "url": args.engine,
        "version": version,
        "context_size": args.num_ctx,
        "api_key_env": key,
    }


async def benchmark(args: argparse.Namespace, argv: list[str] | None) -> int:
    tiers = {int(t) for t in args.tiers.split(",")} if getattr(args, "tiers", None) else None
    ids = set(args.tasks.split(",")) if args.tasks else None
    tasks = select(args.command, quick=getattr(args, "quick", False), tiers=tiers, ids=ids)
    if getattr(args, "categories", None):
        tasks = [t for t in tasks if t.category in args.categories.split(",")]
    if not tasks:
        print("smeep: no task selected", file=sys.stderr)
        return 2
    output = args.output or Path(f"smeep-{args.command}.json")
    journal = Journal(output.with_suffix(".jsonl"))
    if not args.resume:
        journal.reset()
    engine = _engine(args)
    driver: Any = DirectDriver(engine, args.max_tokens, args.temperature)
    if args.driver == "openclaw":
        appliance = Appliance(args.reminders_db, args.led_socket)
        driver = OpenClawDriver(shlex.split(args.openclaw), args.provider, args.agent, appliance)
    meta, _ = journal.read()
    if meta is None:
        meta = {"type": "meta", **metadata.base(argv)}
        journal.append(meta)
    plan = Plan(args.model, tasks, args.trials, args.keep_alive, not args.no_preload, args.workspace, args.seed)
    progress = None if args.no_progress else Progress(len(tasks) * args.trials * len(args.model))
    try:
        notes = await run_plan(plan, engine, driver, journal, progress=progress)
        version = await engine.version()
    finally:
        await engine.aclose()
    meta = {k: v for k, v in meta.items() if k != "type"}
    if argv is not None or args.resume:
        meta["resumed_with"] = shlex.join(["smeep", *(sys.argv[1:] if argv is None else argv)])
    meta.update(
        driver=args.driver,
        agent=args.agent if args.driver == "openclaw" else None,
        trials=args.trials,
        seed=args.seed if driver.seeded else None,
        temperature=driver.temperature,
        engine=_engine_meta(args, engine, version),
        model_notes=notes,
    )
    document = results.build(meta, tasks, args.model, journal.read()[1])
    write_outputs(document, output, report.results_markdown(document), None if args.no_plots else plots.results_plots)
    for model, summary in document["summary"].items():
        hat = summary["pass_hat_k"]
        reliability = (
            f", pass@1 {summary['pass_at_1']}, pass^{max(hat, key=int)} {hat[max(hat, key=int)]}" if hat else ""
        )
        print(f"{model}: {summary['passes']}/{summary['eligible']} passed{reliability}, avg {summary['avg_ms']} ms")
    return 0


async def throughput(args: argparse.Namespace, argv: list[str] | None) -> int:
    engine = _engine(args)
    document: dict[str, Any] = {"schema": "smeep-throughput/1", **metadata.base(argv), "throughput": {}}
    try:
        for model in args.model:
            entry = await measure(
                engine, model, trials=args.trials, max_tokens=args.max_tokens, keep_alive=args.keep_alive
            )
            if args.engine_pid and entry.get("status") == "PASS":
                entry["memory_mib"] = process_rss_mib(args.engine_pid)
            document["throughput"][model] = entry
            print(f"{model}: {entry.get('status')} gen {entry.get('gen_tok_s', {}).get('median')}", file=sys.stderr)
        document["engine"] = _engine_meta(args, engine, await engine.version())
    finally:
        await engine.aclose()
    output = args.output or Path("smeep-throughput.json")
    markdown = report.throughput_markdown(document)
    write_outputs(document, output, markdown, None if args.no_plots else plots.throughput_plots)
    print(markdown)
    return 0


def write_outputs(document: dict[str, Any], output: Path, markdown: str, plotter: Any) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown)
    written = [output, output.with_suffix(".md")]
    if plotter is not None:
        written += plotter([("", document)], output.with_suffix(""))
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)


def compare(args: argparse.Namespace) -> int:
    documents = [(path.stem, json.loads(path.read_text())) for path in args.files]
    markdown = report.compare_markdown(documents)
    args.output.write_text(markdown)
    if not args.no_plots:
        prefix = args.output.with_suffix("")
        if any("summary" in d for _, d in documents):
            plots.results_plots(documents, prefix)
        if any("throughput" in d for _, d in documents):
            plots.throughput_plots(documents, prefix)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
