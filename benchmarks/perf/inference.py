#!/usr/bin/env python3
"""Inference engine baseline: prompt and generation tokens/s, time to first token, engine memory.

Talks to any OpenAI-compatible endpoint (llama.cpp's server, Ollama's /v1) with the standard
library only, so it runs on a node as it is (`make bench-inference` runs it on the demo claw node
against crush, which admits only claw). This is the baseline the claw side's overhead
(ThreadWeaver, OpenClaw) is measured against.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request

PROMPT = (
    "The appliance has two nodes: claw runs the automation runtime and crush runs inference. "
    "Write a short paragraph about why a private, always-on inference node on a desk is useful."
)


def stream_once(url: str, model: str, max_tokens: int, timeout: float) -> dict[str, float]:
    """One streamed chat completion: time to first token and generation rate."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    request = urllib.request.Request(
        f"{url}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            if delta.get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    if not tokens:
        raise RuntimeError("the engine streamed no tokens")
    generation = (tokens - 1) / (last - first) if tokens > 1 and last > first else float("nan")
    return {"ttft_s": first - start, "gen_tok_s": generation, "tokens": tokens}


def prompt_tokens(url: str, model: str, timeout: float) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}
    request = urllib.request.Request(
        f"{url}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(json.load(response)["usage"]["prompt_tokens"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="OpenAI-compatible base URL, e.g. http://crush:8080/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--engine-rss-kib", type=int, help="engine resident memory, measured on the engine's node")
    args = parser.parse_args(argv)

    n_prompt = prompt_tokens(args.url, args.model, args.timeout)
    stream_once(args.url, args.model, 8, args.timeout)  # warm-up: model loaded, caches filled
    runs = [stream_once(args.url, args.model, args.max_tokens, args.timeout) for _ in range(args.runs)]
    ttft = [r["ttft_s"] for r in runs]
    gen = [r["gen_tok_s"] for r in runs]
    print(f"inference baseline: model {args.model} at {args.url}, {args.runs} streamed runs")
    print(f"  prompt tokens          {n_prompt}")
    print(f"  time to first token    median {statistics.median(ttft) * 1000:8.1f} ms   min {min(ttft) * 1000:.1f} ms")
    print(f"  prompt processing      median {n_prompt / statistics.median(ttft):8.1f} tok/s (upper bound: TTFT)")
    print(f"  generation             median {statistics.median(gen):8.1f} tok/s   min {min(gen):.1f} tok/s")
    print(f"  tokens per run         {[r['tokens'] for r in runs]}")
    if args.engine_rss_kib:
        print(f"  engine resident memory {args.engine_rss_kib / 1024:8.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
