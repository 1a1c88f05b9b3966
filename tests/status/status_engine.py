"""A fake Ollama for the status tests, as an httpx handler: its version, two models on disk, one loaded."""

from __future__ import annotations

from typing import Any

import httpx

DETAILS = {"format": "gguf", "family": "qwen3", "parameter_size": "4.0B", "quantization_level": "Q4_K_M"}
OLLAMA = {
    "/api/version": {"version": "0.12.6"},
    "/api/tags": {
        "models": [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-11-20T09:12:44.91385629+01:00",
                "size": size,
                "digest": "e55aed6fe643f9368b2f48f8aaa56ec787b75765da69f794c0a0c23bfe7c64b2",
                "details": DETAILS,
            }
            for name, size in (("qwen3:4b", 2497293931), ("llama3.2:1b", 1321098329))
        ]
    },
    "/api/ps": {
        "models": [
            {
                "name": "qwen3:4b",
                "model": "qwen3:4b",
                "size": 4113301824,
                "digest": "e55aed6fe643f9368b2f48f8aaa56ec787b75765da69f794c0a0c23bfe7c64b2",
                "details": DETAILS,
                "expires_at": "2318-02-28T23:03:52.36443719+01:00",
                "size_vram": 3650000000,
                "context_length": 4096,
            }
        ]
    },
}


def ollama(request: httpx.Request) -> httpx.Response:
    """A fake Ollama as an httpx handler: its version, two models on disk, one loaded."""
    body: Any = OLLAMA.get(request.url.path)
    return httpx.Response(200, json=body) if body is not None else httpx.Response(404, text="404 page not found")
