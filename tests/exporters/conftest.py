"""Fixtures for the exporter tests: fixed engine answers on a real socket and an exporter run as its own process
(the simulated Jetson root, ``jetson_root``, is tests/conftest.py's)."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.doubles.http import Routes, fixed_routes, running


def wait_for_port(proc: subprocess.Popen, deadline_s: float = 15.0) -> int:
    """The port an exporter started with ``--listen HOST:0`` logs that it serves /metrics on."""
    seen = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stderr.readline()
        seen.append(line)
        match = re.search(r"serving /metrics on [^ ]+:(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"exporter did not start: {''.join(seen)}")


def scrape_then_sigterm(args: list[str]) -> str:
    """Run ``python -m EXPORTER`` with ``args`` (``--listen 127.0.0.1:0`` among them), scrape /metrics once, stop it
    as systemd does; the body, once the scrape answered 200 and the process exited 0 saying why."""
    proc = subprocess.Popen([sys.executable, "-m", *args], stderr=subprocess.PIPE, text=True)
    try:
        port = wait_for_port(proc)
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False)
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "received SIGTERM, stopping" in proc.stderr.read()
        return response.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def exporter_process() -> Callable[[list[str]], str]:
    """:func:`scrape_then_sigterm`: an exporter's process from start to a clean stop; returns what it served."""
    return scrape_then_sigterm


@pytest.fixture
def fake_engine() -> Iterator[Callable[[Routes], str]]:
    """Serve fixed engine answers on 127.0.0.1 (random port); returns its base URL."""
    with ExitStack() as servers:
        yield lambda routes: servers.enter_context(running(fixed_routes(routes)))


# Real response shapes (Ollama /api/ps and /api/version; llama-server /health and /v1/models), served by
# the fixtures below so test modules need not import this conftest.
OLLAMA_VERSION = {"version": "0.12.6"}
OLLAMA_PS = {
    "models": [
        {
            "name": "qwen3:4b",
            "model": "qwen3:4b",
            "size": 4113301824,
            "digest": "e55aed6fe643f9368b2f48f8aaa56ec787b75765da69f794c0a0c23bfe7c64b2",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "qwen3",
                "families": ["qwen3"],
                "parameter_size": "4.0B",
                "quantization_level": "Q4_K_M",
            },
            "expires_at": "2025-07-14T10:34:36.211543213+02:00",
            "size_vram": 3650000000,
            "context_length": 4096,
        }
    ]
}
OLLAMA_PS_OLD = {
    "models": [
        {
            "name": "llama3.2:1b",
            "model": "llama3.2:1b",
            "size": 1866190848,
            "digest": "baf6a787fdffd633537aa2eb51cfd54cb93ff08e28040095462bb63daf552878",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "1.2B", "quantization_level": "Q8_0"},
            "expires_at": "2025-07-14T10:34:36.211543213+02:00",
            "size_vram": 1866190848,
        }
    ]
}
LLAMACPP_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "qwen2.5-1.5b-instruct-q4_k_m.gguf",
            "object": "model",
            "created": 1752482976,
            "owned_by": "llamacpp",
            "meta": {
                "vocab_type": 2,
                "n_vocab": 151936,
                "n_ctx_train": 32768,
                "n_embd": 1536,
                "n_params": 1543714304,
                "size": 1036234752,
            },
        }
    ],
}


@pytest.fixture
def ollama_routes() -> Routes:
    return {"/": (200, b"Ollama is running"), "/api/version": (200, OLLAMA_VERSION), "/api/ps": (200, OLLAMA_PS)}


@pytest.fixture
def ollama_old_routes() -> Routes:
    return {"/api/version": (200, {"version": "0.5.7"}), "/api/ps": (200, OLLAMA_PS_OLD)}


@pytest.fixture
def llamacpp_routes() -> Routes:
    return {"/health": (200, {"status": "ok"}), "/v1/models": (200, LLAMACPP_MODELS)}
