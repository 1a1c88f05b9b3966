"""Throughput per model (and so per quantisation): load time, time to first token, prompt and generation tokens/s,
memory. Ollama reports its own durations; for the OpenAI API the timings come from the SSE stream."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from claw.engine.errors import CrushError, ModelUnavailable

from smeep.engines import Engine, OllamaEngine, Reply

PROMPT = (
    "The appliance has two nodes: claw runs the automation runtime and crush runs inference. "
    "Write a short paragraph about why a private, always-on inference node on a desk is useful."
)


def rates(reply: Reply) -> dict[str, float | None]:
    """One streamed reply's numbers; the engine's own durations where it has them (Ollama)."""
    ttft = reply.ttft_s
    if reply.eval_s and reply.output_tokens:
        gen = reply.output_tokens / reply.eval_s
    elif reply.output_tokens and ttft is not None and reply.total_s > ttft and reply.output_tokens > 1:
        gen = (reply.output_tokens - 1) / (reply.total_s - ttft)
    elif reply.chunks > 1 and ttft is not None and reply.total_s > ttft:
        gen = (reply.chunks - 1) / (reply.total_s - ttft)
    else:
        gen = None
    if reply.prompt_eval_s and reply.prompt_tokens:
        prompt = reply.prompt_tokens / reply.prompt_eval_s
    elif reply.prompt_tokens and ttft:
        prompt = reply.prompt_tokens / ttft  # an upper bound on the time: includes the HTTP round trip
    else:
        prompt = None
    return {"ttft_ms": ttft * 1000 if ttft is not None else None, "prompt_tok_s": prompt, "gen_tok_s": gen}


def spread(values: list[float | None]) -> dict[str, float | None]:
    real = [v for v in values if v is not None]
    if not real:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(real), "min": min(real), "max": max(real)}


async def measure(engine: Engine, model: str, *, trials: int, max_tokens: int, keep_alive: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": "PASS", "keep_alive": keep_alive, "trials": trials, "max_tokens": max_tokens}
    try:
        entry["evicted"] = await engine.evict_all()
        entry["load_s"] = await engine.preload(model, keep_alive)
    except (CrushError, OSError) as err:
        return {"status": "LOAD_FAIL", "error": str(err)}
    entry["digest"] = await engine.digest(model)
    messages = [{"role": "user", "content": PROMPT}]
    try:
        await engine.chat(model, messages, stream=True, max_tokens=4)  # warm-up: loaded, caches filled
        replies = [await engine.chat(model, messages, stream=True, max_tokens=max_tokens) for _ in range(trials)]
        if any(r.prompt_tokens is None for r in replies):  # llama.cpp's stream has no usage: ask once, unstreamed
            counted = (await engine.chat(model, messages, max_tokens=1)).prompt_tokens
            for reply in replies:
                reply.prompt_tokens = reply.prompt_tokens or counted
        runs = [rates(reply) for reply in replies]
    except ModelUnavailable as err:
        return {"status": "LOAD_FAIL", "error": str(err)}
    except (CrushError, OSError) as err:
        return {"status": "ERR", "error": str(err)}
    for key in ("ttft_ms", "prompt_tok_s", "gen_tok_s"):
        entry[key] = spread([run[key] for run in runs])
    entry["runs"] = runs
    if isinstance(engine, OllamaEngine):
        entry.update(await _ollama_footprint(engine, model))
    return entry


async def _ollama_footprint(engine: OllamaEngine, model: str) -> dict[str, Any]:
    try:
        loaded = await engine.client.loaded_models()
    except (OSError, CrushError):
        return {}
    for entry in loaded:
        if entry.name == model:
            return {
                "memory_mib": (entry.size_bytes or 0) / (1 << 20),
                "vram_mib": (entry.size_vram_bytes or 0) / (1 << 20),
                "quantization": entry.quantization,
                "parameters": entry.parameter_size,
            }
    return {}


def process_rss_mib(pid: int) -> float | None:
    """The engine's resident memory when it runs on this machine (llama.cpp's server has no API for it)."""
    try:
        with Path(f"/proc/{pid}/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
