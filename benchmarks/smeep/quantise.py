"""`smeep quantise`: one GGUF quantised locally to several types, each measured and scored on this host.

llama.cpp's own quantiser (llama-cpp-python's `llama_model_quantize`) writes each type from the one GGUF; a source
that is already quantised is requantised (`allow_requantize`), and the results say so. Each file is then timed
with llama.cpp's own prompt and generation timings on a fixed prompt (like llama-bench's pp/tg), its memory read
from /proc, and scored with the SMEEP ladder through llama-cpp-python's OpenAI-compatible server and the direct
driver. llama.cpp runs in a venv of its own (the wheel roles/llamacpp builds and caches for the crush node),
started as subprocesses: the harness's Python never imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from smeep import metadata
from smeep.throughput import process_rss_mib

SCHEMA = "smeep-quantise/1"
DEFAULT_TYPES = "Q4_0,Q4_K_M,Q8_0"
WORKER = Path(__file__).with_name("llama_worker.py")
REPO = Path(__file__).resolve().parents[2]  # the checkout, where roles/llamacpp pins the server's dependencies

# llama.cpp's llama_ftype (include/llama.h), as GGUF's general.file_type holds it.
FTYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_S": 11,
    "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
    "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21, "IQ3_XS": 22, "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25,
    "IQ3_S": 26, "IQ3_M": 27, "IQ2_S": 28, "IQ2_M": 29, "IQ4_XS": 30, "IQ1_M": 31, "BF16": 32, "TQ1_0": 36,
    "TQ2_0": 37,
}  # fmt: skip
FTYPE_NAMES = {number: name for name, number in FTYPES.items()}
UNQUANTISED = {FTYPES["F32"], FTYPES["F16"], FTYPES["BF16"]}
# SIMD features of /proc/cpuinfo that decide llama.cpp's CPU kernels (x86 flags, Arm Features).
SIMD = ("sse", "ssse3", "avx", "fma", "f16c", "bmi", "amx", "asimd", "fphp", "dotprod", "i8mm", "sve", "bf16")


class QuantiseError(Exception):
    """A step that cannot go on: the message says what is missing or what failed."""


# --- GGUF header -------------------------------------------------------------------------------------------------

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def gguf_metadata(path: Path, wanted: tuple[str, ...] = ("general.file_type", "general.name")) -> dict[str, Any]:
    """The wanted scalar/string keys of a GGUF file's key-value header (stops once all are read)."""
    found: dict[str, Any] = {}
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise QuantiseError(f"{path} is not a GGUF file")
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise QuantiseError(f"{path}: GGUF version {version} is not supported")
        for _ in range(count):
            key = _string(f)
            kind = struct.unpack("<I", f.read(4))[0]
            if key in wanted and kind != _ARRAY:
                found[key] = _value(f, kind)
                if len(found) == len(wanted):
                    break
            else:
                _skip(f, kind)
    return found


def _string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", f.read(8))
    return f.read(length).decode("utf-8", "replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _string(f)
    fmt = "<" + _SCALARS[kind]
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def _skip(f: BinaryIO, kind: int) -> None:
    if kind == _ARRAY:
        item, n = struct.unpack("<IQ", f.read(12))
        if item in _SCALARS:
            f.seek(n * struct.calcsize("<" + _SCALARS[item]), os.SEEK_CUR)
        else:
            for _ in range(n):
                _skip(f, item)
    elif kind == _STRING:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(length, os.SEEK_CUR)
    elif kind in _SCALARS:
        f.seek(struct.calcsize("<" + _SCALARS[kind]), os.SEEK_CUR)
    else:
        raise QuantiseError(f"unknown GGUF value type {kind}")


def ftype_name(number: int | None) -> str | None:
    return None if number is None else FTYPE_NAMES.get(number, f"ftype {number}")


# --- llama.cpp's venv ----------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The controller cache roles/llamacpp keeps wheels and models in (llamacpp_cache_dir)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "picocluster-claw"


def cpu_flags(proc: Path = Path("/proc")) -> list[str]:
    """This CPU's SIMD features (x86 `flags`, Arm `Features`), the ones llama.cpp's kernels depend on."""
    try:
        for line in (proc / "cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return sorted(f for f in value.split() if f.startswith(SIMD))
    except OSError:
        pass
    return []


def _runs_here(build: dict[str, Any], flags: set[str]) -> bool:
    baseline = build.get("cpu_baseline") or ""
    if baseline == "x86-64-v3":
        return {"avx2", "fma", "bmi2", "f16c"} <= flags
    return True


def find_wheel(cache: Path | None = None) -> Path | None:
    """The newest llama-cpp-python wheel roles/llamacpp built for this architecture and a CPU level this one has."""
    root = (cache or cache_dir()) / "wheels" / "llama-cpp-python"
    flags = set(cpu_flags())
    found = []
    for wheel in root.glob("*/*/llama_cpp_python-*.whl"):
        if platform.machine() not in wheel.parent.name:
            continue
        info = wheel.parent / "build-info.json"
        build = json.loads(info.read_text()) if info.is_file() else {}
        if build.get("smoke", {}).get("ok") is False or not _runs_here(build, flags):
            continue
        version = tuple(int(p) if p.isdigit() else 0 for p in wheel.parent.parent.name.split("."))
        found.append((version, wheel.stat().st_mtime, wheel))
    return max(found)[2] if found else None


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def ensure_venv(venv: Path, wheel: Path, find_links: list[Path]) -> Path:
    """A venv with the wheel and its server's pinned dependencies, installed offline; reused while the wheel is the
    same. Returns its Python."""
    python = venv / "bin" / "python"
    stamp = venv / "smeep-wheel.json"
    want = {"wheel": str(wheel), "size": wheel.stat().st_size, "mtime": wheel.stat().st_mtime}
    if python.exists() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return python
    links = [d for d in find_links if d.is_dir()]
    if not links:
        raise QuantiseError(
            "no wheelhouse for llama-cpp-python's dependencies (looked in "
            + ", ".join(str(d) for d in find_links)
            + "): pass --find-links DIR with the wheels roles/llamacpp pins; nothing is downloaded"
        )
    print(f"smeep: creating {venv} from {wheel.name} (offline)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index"]
    for link in [*links, wheel.parent]:
        command += ["--find-links", str(link)]
    constraints = REPO / "roles" / "llamacpp" / "files" / f"constraints-{wheel_version(wheel)}.txt"
    if constraints.is_file():
        command += ["--constraint", str(constraints)]
    command.append(f"llama_cpp_python[server] @ {wheel.resolve().as_uri()}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise QuantiseError(f"installing {wheel.name} offline failed:\n{done.stdout}{done.stderr}".strip())
    stamp.write_text(json.dumps(want) + "\n")
    return python


def worker(python: Path, *args: object, log: Path | None = None, timeout: float = 900) -> dict[str, Any]:
    """Runs llama_worker.py in the venv; its JSON answer. llama.cpp's log goes to `log`."""
    command = [str(python), str(WORKER), *map(str, args)]
    err = log or Path(os.devnull)
    with err.open("w") as stderr:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = log.read_text()[-2000:] if log else ""
        raise QuantiseError(f"llama_worker {args[0]} exited {done.returncode}{' (see ' + str(log) + ')' if log else ''}"
                            f"\n{tail}".strip())  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def server(python: Path, model: Path, alias: str, args: argparse.Namespace, log: Path) -> Iterator[tuple[str, int]]:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port: (base URL, pid)."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(python), "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
               "--n_ctx", str(args.n_ctx), "--n_threads", str(args.threads), "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    if args.chat_format:
        command += ["--chat_format", args.chat_format]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise QuantiseError(f"llama_cpp.server exited {process.returncode}: see {log}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise QuantiseError(f"llama_cpp.server did not answer in 120 s: see {log}")
            time.sleep(0.3)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the command -------------------------------------------------------------------------------------------------


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gguf", type=Path, required=True, help="source GGUF (F16/BF16; quantised: requantised)")
    parser.add_argument("--types", default=DEFAULT_TYPES, help=f"comma-separated llama.cpp types ({DEFAULT_TYPES})")
    parser.add_argument("--out", type=Path, default=Path("smeep-quantise"), help="directory for the files and results")
    parser.add_argument("--quick", action="store_true", help="score on ladder tiers 1 and 2 only")
    parser.add_argument("--tasks", help="comma-separated ladder task ids to score on")
    parser.add_argument("--no-score", action="store_true", help="speed and memory only, no ladder")
    parser.add_argument("--trials", type=int, default=1, help="ladder trials per task")
    parser.add_argument("--max-tokens", type=int, default=96, help="cap on each model turn in the ladder")
    parser.add_argument("--prompt-tokens", type=int, default=256, help="speed: prompt length in tokens")
    parser.add_argument("--gen-tokens", type=int, default=64, help="speed: tokens generated per run")
    parser.add_argument("--speed-trials", type=int, default=3, help="speed: timed runs per file (median)")
    parser.add_argument("--threads", type=int, default=_usable_cpus(), help="llama.cpp CPU threads")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context size (speed and server)")
    parser.add_argument("--chat-format", help="llama-cpp-python chat format for the server (default: the GGUF's)")
    parser.add_argument("--wheel", type=Path, help="llama-cpp-python wheel (default: the newest roles/llamacpp cached)")
    parser.add_argument("--venv", type=Path, help="venv for llama.cpp (default: <cache>/smeep-quant-venv)")
    parser.add_argument(
        "--find-links", type=Path, action="append", help="wheelhouse of its dependencies (default: <cache>/lock-wheels)"
    )
    parser.add_argument("--no-progress", action="store_true")


def _spread(values: list[float | None]) -> dict[str, float | None]:
    real = [v for v in values if v is not None]
    if not real:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(real), "min": min(real), "max": max(real)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        return _run(args, argv)
    except QuantiseError as err:
        print(f"smeep quantise: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    types = [t.strip().upper() for t in args.types.split(",") if t.strip()]
    unknown = [t for t in types if t not in FTYPES]
    if not types or unknown:
        raise QuantiseError(f"unknown type(s) {', '.join(unknown) or '(none)'}; known: {', '.join(FTYPES)}")
    if not args.gguf.is_file():
        raise QuantiseError(f"{args.gguf}: no such GGUF file")
    if min(args.prompt_tokens, args.gen_tokens, args.speed_trials, args.threads) < 1:
        raise QuantiseError("--prompt-tokens, --gen-tokens, --speed-trials and --threads must be at least 1")
    if args.prompt_tokens + args.gen_tokens + 8 > args.n_ctx:
        raise QuantiseError(f"--prompt-tokens + --gen-tokens must fit in --n-ctx {args.n_ctx}")
    wheel = args.wheel or find_wheel()
    if wheel is None or not wheel.is_file():
        raise QuantiseError(
            f"no llama-cpp-python wheel for {platform.machine()} in {cache_dir() / 'wheels' / 'llama-cpp-python'}: "
            "roles/llamacpp builds and caches it (a converge of the crush node), or pass --wheel"
        )
    python = ensure_venv(
        args.venv or cache_dir() / "smeep-quant-venv", wheel, args.find_links or [cache_dir() / "lock-wheels"]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    source = gguf_metadata(args.gguf)
    source_type = source.get("general.file_type")
    requantised_from = ftype_name(source_type) if source_type not in UNQUANTISED else None
    build_info = wheel.parent / "build-info.json"
    document: dict[str, Any] = {
        "schema": SCHEMA,
        **metadata.base(argv),
        "cpu_flags": cpu_flags(),
        "load_average": {"before": list(os.getloadavg()), "after": None},
        "llama_cpp": {
            **worker(python, "info"),
            "wheel": wheel.name,
            "wheel_key": wheel.parent.name,
            "build": json.loads(build_info.read_text()) if build_info.is_file() else None,
        },
        "source": {
            "path": str(args.gguf),
            "name": source.get("general.name"),
            "sha256": _sha256(args.gguf),
            "size_bytes": args.gguf.stat().st_size,
            "file_type": source_type,
            "type": ftype_name(source_type),
        },
        "requantised_from": requantised_from,
        "speed_settings": {
            "prompt_tokens": args.prompt_tokens,
            "gen_tokens": args.gen_tokens,
            "trials": args.speed_trials,
            "threads": args.threads,
            "n_ctx": args.n_ctx,
        },
        "score_settings": None
        if args.no_score
        else {
            "suite": "ladder",
            "quick": args.quick,
            "tasks": args.tasks,
            "trials": args.trials,
            "max_tokens": args.max_tokens,
            "driver": "direct",
            "chat_format": args.chat_format,
        },
        "types": types,
        "quantisations": {},
    }
    stem = args.gguf.stem if not _is_digest(args.gguf.stem) else (source.get("general.name") or "model")
    stem = "-".join(stem.lower().split())
    entries = {kind: _quantise(python, args, kind, stem, requantised_from) for kind in types}
    _speeds(python, args, entries)
    for kind, entry in entries.items():
        entry["score"] = None if args.no_score else _score(python, args, kind, args.out / entry["file"])
    document["quantisations"] = entries
    document["load_average"]["after"] = list(os.getloadavg())
    output = args.out / "smeep-quantise.json"
    output.write_text(json.dumps(document, indent=2) + "\n")
    text = markdown(document)
    output.with_suffix(".md").write_text(text)
    print(f"wrote {output}, {output.with_suffix('.md')}", file=sys.stderr)
    print(text)
    return 0


def _is_digest(stem: str) -> bool:
    return len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.no_progress:
        print(f"smeep quantise: {text}", file=sys.stderr)


def _quantise(python: Path, args: argparse.Namespace, kind: str, stem: str, requantised_from: str | None) -> dict:
    target = args.out / f"{stem}-{kind.lower()}.gguf"
    _say(args, f"{kind}: quantising{' (requantising from ' + requantised_from + ')' if requantised_from else ''}")
    made = worker(python, "quantise", args.gguf, target, kind, args.threads, log=args.out / f"quantise-{kind}.log")
    if made.get("error") or made.get("rc") != 0 or not target.is_file():
        raise QuantiseError(f"{kind}: llama_model_quantize failed ({made}): see {args.out / f'quantise-{kind}.log'}")
    return {
        "file": target.name,
        "size_bytes": target.stat().st_size,
        "ftype": made["ftype"],
        "file_type": gguf_metadata(target).get("general.file_type"),
        "requantised_from": requantised_from,
        "quantise_s": made["seconds"],
    }


def _speeds(python: Path, args: argparse.Namespace, entries: dict[str, dict[str, Any]]) -> None:
    """Times every file in interleaved rounds (round r runs each type once, in a fresh process), so a change in the
    host's load over the measurement falls on every type alike instead of on whichever ran then."""
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in entries}
    for number in range(1, args.speed_trials + 1):
        for kind, entry in entries.items():
            _say(args, f"{kind}: timing round {number}/{args.speed_trials} ({args.prompt_tokens} prompt + "
                       f"{args.gen_tokens} generated tokens)")  # fmt: skip
            timed = [args.out / entry["file"], args.prompt_tokens, args.gen_tokens, 1, args.threads, args.n_ctx]
            rounds[kind].append(worker(python, "speed", *timed, log=args.out / f"speed-{kind}.log"))
    for kind, entry in entries.items():
        measured = rounds[kind]
        runs = [{"round": n, **run} for n, one in enumerate(measured, 1) for run in one["runs"]]
        entry["speed"] = {
            "threads": args.threads,
            "n_ctx": args.n_ctx,
            "load_s": statistics.median(m["load_s"] for m in measured),
            **{key: statistics.median(m[key] for m in measured) for key in ("base_rss_mib", "loaded_rss_mib")},
            "rss_mib": statistics.median(m["rss_mib"] for m in measured),
            "peak_rss_mib": max(m["peak_rss_mib"] for m in measured),
            "prompt_tok_s": _spread([r["prompt_tok_s"] for r in runs]),
            "gen_tok_s": _spread([r["gen_tok_s"] for r in runs]),
            "runs": runs,
        }


def _score(python: Path, args: argparse.Namespace, kind: str, target: Path) -> dict[str, Any]:
    from smeep import cli

    alias = target.stem
    results = args.out / f"ladder-{kind}.json"
    with server(python, target, alias, args, args.out / f"server-{kind}.log") as (url, pid):
        argv = ["ladder", "--engine", url, "--api", "openai", "--model", alias, "--trials", str(args.trials),
                "--max-tokens", str(args.max_tokens), "--output", str(results), "--no-plots",
                "--no-preload"]  # fmt: skip
        argv += ["--quick"] if args.quick else []
        argv += ["--tasks", args.tasks] if args.tasks else []
        argv += ["--no-progress"] if args.no_progress else []
        if cli.main(argv) != 0:
            raise QuantiseError(f"{kind}: the ladder did not run (see {results})")
        server_rss = process_rss_mib(pid)
    summary = json.loads(results.read_text())["summary"][alias]
    return {
        "results": results.name,
        "passes": summary["passes"],
        "eligible": summary["eligible"],
        "pass_rate": summary["pass_rate"],
        "groups": summary["groups"],
        "failed": summary["failed"],
        "server_rss_mib": server_rss,
    }


def _f(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _rate(spread: dict[str, float | None]) -> str:
    return f"{_f(spread['median'], 1)} ({_f(spread['min'], 1)}-{_f(spread['max'], 1)})"


def _loads(loads: dict[str, Any] | None) -> str:
    """The 1-minute load average before and after: another job on the host shows here."""
    if not loads or not loads.get("before"):
        return "-"
    after = loads.get("after")
    return f"{loads['before'][0]:.2f} before, {after[0]:.2f} after" if after else f"{loads['before'][0]:.2f} before"


def _ratio(speed: dict[str, Any], base: dict[str, Any], key: str) -> str:
    value, reference = speed.get(key, {}).get("median"), base.get(key, {}).get("median")
    return f"{value / reference:.2f}" if value and reference else "-"


def markdown(document: dict[str, Any]) -> str:
    hw, llama = document.get("hardware", {}), document.get("llama_cpp", {})
    source, speed = document.get("source", {}), document.get("speed_settings", {})
    build = llama.get("build") or {}
    quantisations = document.get("quantisations", {})
    ref = "Q4_K_M" if "Q4_K_M" in quantisations else next(iter(quantisations), "-")
    origin = (
        f"requantised from {document['requantised_from']} (the source is already quantised, so every file carries "
        f"{document['requantised_from']}'s rounding: the scores compare formats and kernels, not quantising F16)"
        if document.get("requantised_from")
        else f"quantised from {source.get('type')}"
    )
    lines = [
        f"## SMEEP quantisation ({document.get('timestamp', '?')})",
        "",
        f"`{source.get('name') or source.get('path')}` ({source.get('type')}, sha256 "
        f"{str(source.get('sha256'))[:12]}), {origin} with llama.cpp's quantiser on this host.",
        "",
        f"| type | file MiB | prompt tok/s | gen tok/s | vs {ref} prompt / gen | RSS MiB | score |",
        "|---|---|---|---|---|---|---|",
    ]
    base = quantisations.get(ref, {}).get("speed", {})
    for kind, entry in quantisations.items():
        s, score = entry["speed"], entry.get("score")
        scored = f"{score['passes']}/{score['eligible']}" if score else "-"
        ratio = f"{_ratio(s, base, 'prompt_tok_s')} / {_ratio(s, base, 'gen_tok_s')}"
        lines.append(
            f"| {kind} | {_f(entry['size_bytes'] / (1 << 20), 1)} | {_rate(s['prompt_tok_s'])} | "
            f"{_rate(s['gen_tok_s'])} | {ratio} | {_f(s.get('rss_mib'), 0)} | {scored} |"
        )
    settings = document.get("score_settings")
    lines += [
        "",
        f"Speed: llama.cpp's own timings, median (min-max) of {speed.get('trials')} interleaved rounds of a fixed "
        f"{speed.get('prompt_tokens')}-token prompt and {speed.get('gen_tokens')} generated tokens, "
        f"{speed.get('threads')} threads, context {speed.get('n_ctx')}; RSS: the process after the runs (model "
        "mapped and repacked, KV cache).",
        "Score: "
        + (
            f"SMEEP ladder{' --quick' if settings.get('quick') else ''}"
            f"{' tasks ' + settings['tasks'] if settings.get('tasks') else ''}, direct driver, llama-cpp-python's "
            f"server, {settings.get('trials')} trial(s), --max-tokens {settings.get('max_tokens')}."
            if settings
            else "not run (--no-score)."
        ),
        "",
        f"Host: {hw.get('cpu_model')}, {hw.get('cpu_cores')} CPUs, {hw.get('ram_mib')} MiB RAM, {hw.get('machine')}, "
        f"kernel {hw.get('kernel')}; load average {_loads(document.get('load_average'))}; CPU flags: "
        f"{' '.join(document.get('cpu_flags', [])) or '-'}.",
        f"llama.cpp: llama-cpp-python {llama.get('llama_cpp_python')} (libllama {llama.get('llama_version')}), "
        f"wheel {llama.get('wheel_key')}, CPU level {build.get('cpu_baseline', '?')}; {llama.get('system_info')}",
        "",
        f"Command: `{document.get('command', '')}`",
        "",
    ]
    return "\n".join(lines)
