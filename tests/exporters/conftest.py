"""Fixtures for the crush exporter tests: the simulated Jetson root and fixed engine answers on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.doubles.http import Routes, fixed_routes, running

JETSON_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "jetson_sysfs"


@pytest.fixture
def jetson_root() -> Path:
    assert JETSON_ROOT.is_dir()
    return JETSON_ROOT


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
