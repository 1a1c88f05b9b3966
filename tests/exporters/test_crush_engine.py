"""The engine readers against a local fake HTTP server speaking Ollama's and llama-server's JSON."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from claw.engine.records import LoadedModel
from claw.exporters.engine import read_engine


def test_ollama_version_and_loaded_models(fake_engine, ollama_routes):
    status = read_engine("ollama", fake_engine(ollama_routes))
    assert status.up
    assert status.error is None
    assert status.version == "0.12.6"
    assert status.models == (
        LoadedModel(
            name="qwen3:4b",
            size_bytes=4113301824,
            size_vram_bytes=3650000000,
            context_length=4096,
            expires_at="2025-07-14T10:34:36.211543213+02:00",
            parameter_size="4.0B",
            quantization="Q4_K_M",
        ),
    )


def test_ollama_without_context_length(fake_engine, ollama_old_routes):
    status = read_engine("ollama", fake_engine(ollama_old_routes))
    assert status.up
    [model] = status.models
    assert (model.name, model.size_bytes, model.size_vram_bytes) == ("llama3.2:1b", 1866190848, 1866190848)
    assert model.context_length is None


def test_ollama_nothing_loaded(fake_engine):
    status = read_engine(
        "ollama", fake_engine({"/api/version": (200, {"version": "0.12.6"}), "/api/ps": (200, {"models": []})})
    )
    assert status.up
    assert status.models == ()


def test_ollama_ps_failing_keeps_up_and_the_reason(fake_engine, ollama_routes):
    routes = {**ollama_routes, "/api/ps": (500, {"error": "boom"})}
    status = read_engine("ollama", fake_engine(routes))
    assert status.up
    assert status.models == ()
    assert status.error == "GET /api/ps: HTTP 500"


def test_ollama_answering_something_else_is_down(fake_engine):
    status = read_engine("ollama", fake_engine({"/api/version": (200, b"<html>not ollama</html>")}))
    assert not status.up
    assert status.error.startswith("GET /api/version: JSONDecodeError")


def test_llamacpp_health_and_models(fake_engine, llamacpp_routes):
    status = read_engine("llamacpp", fake_engine(llamacpp_routes))
    assert status.up
    assert status.version is None
    assert status.models == (LoadedModel(name="qwen2.5-1.5b-instruct-q4_k_m.gguf", size_bytes=1036234752),)


def test_llamacpp_loading_model_is_not_up(fake_engine, llamacpp_routes):
    loading = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    status = read_engine("llamacpp", fake_engine({**llamacpp_routes, "/health": (503, loading)}))
    assert not status.up
    assert status.error == "GET /health: HTTP 503 (Loading model)"


def test_llamacpp_generating_is_busy_not_down(fake_engine, llamacpp_routes):
    # llama-cpp-python answers /health (404) at once but holds /v1/models until the running generation ends.
    routes = {"/v1/models": (*llamacpp_routes["/v1/models"], 2.0)}
    status = read_engine("llamacpp", fake_engine(routes), timeout=0.2)
    assert status.up
    assert status.busy
    assert status.error is None
    assert status.models == ()


def test_llamacpp_models_failing_otherwise_is_down(fake_engine, llamacpp_routes):
    status = read_engine("llamacpp", fake_engine({**llamacpp_routes, "/v1/models": (500, {"error": "boom"})}))
    assert not status.up
    assert not status.busy
    assert status.error == "GET /v1/models: HTTP 500"


def test_openai_compatible_server_without_health_endpoint(fake_engine, llamacpp_routes):
    routes = {"/v1/models": llamacpp_routes["/v1/models"]}  # /health answers 404
    status = read_engine("llamacpp", fake_engine(routes))
    assert status.up
    assert [m.name for m in status.models] == ["qwen2.5-1.5b-instruct-q4_k_m.gguf"]


@pytest.mark.parametrize("engine", ["ollama", "llamacpp"])
def test_engine_down_is_reported_not_raised(engine, closed_port_url):
    status = read_engine(engine, closed_port_url, timeout=1.0)
    assert not status.up
    assert status.models == ()
    assert "ConnectError" in status.error


def test_unknown_engine_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown engine"):
        read_engine("vllm", "http://127.0.0.1:1")


def test_llamacpp_health_and_models_are_asked_together(fake_engine, llamacpp_routes):
    # Each answer takes 0.5 s: asked one after the other the reading would take 1 s (a busy host's margin: 0.3 s).
    routes = {path: (*answer, 0.5) for path, answer in llamacpp_routes.items()}
    started = time.perf_counter()
    status = read_engine("llamacpp", fake_engine(routes), timeout=2)
    assert status.up and [m.name for m in status.models] == ["qwen2.5-1.5b-instruct-q4_k_m.gguf"]
    assert time.perf_counter() - started < 0.8


def test_llamacpp_not_ready_does_not_wait_for_the_models(fake_engine, llamacpp_routes):
    loading = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    routes = {"/health": (503, loading), "/v1/models": (*llamacpp_routes["/v1/models"], 1.5)}
    started = time.perf_counter()
    status = read_engine("llamacpp", fake_engine(routes), timeout=5)
    assert not status.up and status.error == "GET /health: HTTP 503 (Loading model)"
    assert time.perf_counter() - started < 1.0


def test_the_exporter_does_not_load_pydantic():
    # The engine path (claw.engine errors, records, dialects, sync) keeps the exporter as light as before the
    # engine package: pydantic alone would add about 9 MiB of resident memory on the node.
    code = "import sys, claw.exporters.crush; print('pydantic' in sys.modules, 'claw.engine.client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
