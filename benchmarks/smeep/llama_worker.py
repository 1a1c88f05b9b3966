"""Runs inside the quantisation venv (llama-cpp-python's wheel), never in the harness's own Python.

`smeep quantise` starts it as a script with that venv's interpreter, so it imports only the standard library and
`llama_cpp`. Each command prints one JSON object on stdout; llama.cpp's own log goes to stderr.

    info                                              versions and the CPU features llama.cpp was built with
    quantise IN OUT TYPE THREADS                      llama_model_quantize (allow_requantize), e.g. TYPE=Q4_0
    speed MODEL PROMPT_TOKENS GEN_TOKENS TRIALS THREADS N_CTX
                                                      prompt and generation tokens/s from llama.cpp's own timings
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import llama_cpp

# A fixed text, repeated and cut to the asked number of tokens: every quantisation reads the same prompt.
TEXT = (
    "The appliance has two nodes: claw runs the automation runtime and crush runs inference. "
    "A private, always-on inference node on a desk answers without a network, keeps data local, and costs "
    "nothing per token; the question is how small a model can be and still do the work, and how fast it runs. "
)


def _status(field: str) -> float | None:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def info() -> dict:
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "llama_version": llama_cpp.llama_version().decode(),
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }


def quantise(source: str, target: str, kind: str, threads: int) -> dict:
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        return {"error": f"llama.cpp has no file type {kind}"}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads
    started = time.monotonic()
    rc = llama_cpp.llama_model_quantize(source.encode(), target.encode(), params)
    return {"ftype": ftype, "rc": rc, "seconds": time.monotonic() - started}


def speed(model: str, prompt_tokens: int, gen_tokens: int, trials: int, threads: int, n_ctx: int) -> dict:
    base_rss = _status("VmRSS")
    started = time.monotonic()
    llm = llama_cpp.Llama(model, n_ctx=n_ctx, n_batch=512, n_threads=threads, seed=0, verbose=False)
    load_s = time.monotonic() - started
    loaded_rss = _status("VmRSS")
    text = TEXT
    while len(llm.tokenize(text.encode())) < prompt_tokens:
        text += TEXT
    prompt = llm.tokenize(text.encode())[:prompt_tokens]
    eos = llm.token_eos()
    bias = {eos: -1e9} if eos is not None and eos >= 0 else None  # a fixed length: never stop early

    def run(max_tokens: int) -> dict:
        llm.reset()  # the whole prompt is evaluated again, not found in the cache
        llama_cpp.llama_perf_context_reset(llm.ctx)
        out = llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, logit_bias=bias)
        perf = llama_cpp.llama_perf_context(llm.ctx)
        return {
            "prompt_tokens": perf.n_p_eval,
            "prompt_ms": perf.t_p_eval_ms,
            "gen_tokens": perf.n_eval,
            "gen_ms": perf.t_eval_ms,
            "completion_tokens": out["usage"]["completion_tokens"],
            "prompt_tok_s": perf.n_p_eval / perf.t_p_eval_ms * 1000 if perf.t_p_eval_ms > 0 else None,
            "gen_tok_s": perf.n_eval / perf.t_eval_ms * 1000 if perf.t_eval_ms > 0 else None,
        }

    run(4)  # warm-up: weights paged in, buffers allocated
    runs = [run(gen_tokens) for _ in range(trials)]
    return {
        "load_s": load_s,
        "threads": threads,
        "n_ctx": n_ctx,
        "base_rss_mib": base_rss,
        "loaded_rss_mib": loaded_rss,
        "rss_mib": _status("VmRSS"),
        "peak_rss_mib": _status("VmHWM"),
        "runs": runs,
    }


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "info":
        result = info()
    elif command == "quantise":
        result = quantise(args[0], args[1], args[2], int(args[3]))
    elif command == "speed":
        result = speed(args[0], *(int(a) for a in args[1:]))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
