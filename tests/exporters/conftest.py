"""Fixtures for the crush exporter tests: the simulated Jetson root and a fake engine HTTP server."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

JETSON_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "jetson_sysfs"

# path -> (HTTP status, JSON body or raw bytes for a body that is not JSON[, seconds to wait before answering])
Routes = dict[str, tuple]


@pytest.fixture
def jetson_root() -> Path:
    assert JETSON_ROOT.is_dir()
    return JETSON_ROOT


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out on a delayed route has hung up, which is what those routes test; the
        # traceback socketserver would print lands in a later test's captured stderr.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture
def fake_engine() -> Iterator[Callable[[Routes], str]]:
    """Start a stdlib HTTP server on 127.0.0.1 (random port) answering fixed routes; returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(routes: Routes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body, *delay = routes.get(self.path, (404, {"error": "not found"}))
                if delay:
                    time.sleep(delay[0])
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


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
