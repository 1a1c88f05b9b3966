"""Smoke check of a freshly built llama-cpp-python wheel: load a model and answer one completion.

Runs on the node, in the build environment, before the wheel is cached or installed anywhere. The completion
runs in a child process, so a crash (a CPU instruction the build assumed, a bad weight repacking) is reported
with its signal instead of taking the check down with it. Prints one JSON line; exit 0 only for an answer.

    python smoke.py MODEL.gguf [--timeout S] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

# The child: what llama.cpp says it was built with, then one short completion through the real load path.
CHILD = """
import json, sys
import llama_cpp
info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
print(json.dumps({"system_info": info}), flush=True)
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=int(sys.argv[2]) or None, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
print(json.dumps({"text": out["choices"][0]["text"], "usage": out.get("usage", {})}), flush=True)
"""


def _records(stdout: str) -> dict[str, object]:
    merged: dict[str, object] = {}
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            merged.update(record)
    return merged


def _signal_name(returncode: int) -> str | None:
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def check(model: str, timeout: float, threads: int) -> tuple[bool, dict[str, object]]:
    """Run one completion in a child interpreter; (answered, report)."""
    command = [sys.executable, "-c", CHILD, model, str(threads)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return False, {**_records(out), "error": f"no answer within {timeout:g} s"}
    report: dict[str, object] = _records(proc.stdout)
    stderr_tail = proc.stderr.strip().splitlines()[-5:]
    killed_by = _signal_name(proc.returncode)
    if killed_by:
        report["error"] = f"the completion process was killed by {killed_by}"
    elif proc.returncode != 0:
        report["error"] = f"the completion process exited with status {proc.returncode}"
    elif not isinstance(report.get("text"), str):
        report["error"] = "the completion returned no text"
    if "error" in report:
        report["stderr"] = stderr_tail
        return False, report
    return True, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    answered, report = check(args.model, args.timeout, args.threads)
    print(json.dumps({"ok": answered, **report}))
    return 0 if answered else 1


if __name__ == "__main__":
    sys.exit(main())
