"""EngineClient against fake Ollama and llama.cpp servers speaking the real protocols."""

from __future__ import annotations

import pytest
from claw.engine.client import EngineClient
from claw.engine.models import PullProgress
from claw.engine.records import LoadedModel, ModelInfo
from pydantic import TypeAdapter

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "Say hello"}]


async def test_auto_detects_each_engine(ollama, llamacpp):
    async with EngineClient(ollama.url) as client:
        assert await client.engine() == "ollama"
    async with EngineClient(llamacpp.url) as client:
        assert await client.engine() == "llamacpp"


async def test_ollama_health(ollama):
    async with EngineClient(ollama.url) as client:
        health = await client.health()
    assert health.reachable and health.ready
    assert (health.engine, health.version, health.error) == ("ollama", "0.12.6", None)
    assert health.latency_ms >= 0


async def test_llamacpp_health_has_no_version(llamacpp):
    async with EngineClient(llamacpp.url, engine="llamacpp") as client:
        health = await client.health()
    assert health.ready and health.engine == "llamacpp" and health.version is None


async def test_ollama_models_and_loaded(ollama):
    async with EngineClient(ollama.url, engine="ollama") as client:
        models = {model.name: model for model in await client.list_models()}
        loaded = await client.loaded_models()
    assert set(models) == {"qwen3:4b", "llama3.2:1b"}
    assert models["qwen3:4b"].size_bytes == 2497293931
    assert models["qwen3:4b"].family == "qwen"
    assert models["qwen3:4b"].quantization == "Q4_K_M"
    assert [model.name for model in loaded] == ["qwen3:4b"]
    assert loaded[0].size_vram_bytes == 2497293931
    assert loaded[0].size_bytes == 2497293931 + 600_000_000
    assert loaded[0].context_length == 4096
    assert loaded[0].expires_at.startswith("2025-07-14")


async def test_llamacpp_serves_its_configured_models_loaded(llamacpp):
    async with EngineClient(llamacpp.url) as client:
        assert [m.name for m in await client.list_models()] == ["gemma3-270m", "qwen2.5-1.5b"]
        assert [m.name for m in await client.loaded_models()] == ["gemma3-270m", "qwen2.5-1.5b"]


async def test_pull_reports_progress_in_order(ollama):
    seen: list[PullProgress] = []
    async with EngineClient(ollama.url) as client:
        result = await client.pull_model("gemma3:270m", seen.append)  # a plain callback works too
        names = [model.name for model in await client.list_models()]
    sizes = ollama.library["gemma3:270m"]
    assert result.status == "success" and result.total_bytes == sum(sizes)
    assert "gemma3:270m" in names
    statuses = [p.status for p in seen]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert seen[1].digest and seen[1].total == sizes[0] and seen[1].completed is None
    overall = [p.overall_completed for p in seen]
    assert overall == sorted(overall) and overall[-1] == sum(sizes)
    assert seen[-1].overall_total == sum(sizes)
    assert ollama.requests[0] == ("POST", "/api/pull", {"model": "gemma3:270m", "stream": True})


async def test_pull_with_async_callback(ollama):
    calls = []

    async def record(progress: PullProgress) -> None:
        calls.append(progress.status)

    async with EngineClient(ollama.url) as client:
        await client.pull_model("gemma3:270m", record)
    assert calls[-1] == "success"


async def test_unload_is_idempotent(ollama):
    async with EngineClient(ollama.url) as client:
        first = await client.unload_model("qwen3:4b")
        assert await client.loaded_models() == []
        second = await client.unload_model("qwen3:4b")
    assert first.was_loaded and not second.was_loaded
    assert ("POST", "/api/generate", {"model": "qwen3:4b", "keep_alive": 0, "stream": False}) in ollama.requests


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_chat(ollama, stream):
    async with EngineClient(ollama.url) as client:
        reply = await client.chat("llama3.2:1b", HELLO, stream=stream)
        loaded = [model.name for model in await client.loaded_models()]
    assert reply.content == "Hello from llama3.2:1b"
    assert reply.done_reason == "stop"
    assert "llama3.2:1b" in loaded
    assert ollama.requests[-1][2]["stream"] is stream


@pytest.mark.parametrize("stream", [False, True])
async def test_llamacpp_chat(llamacpp, stream):
    async with EngineClient(llamacpp.url) as client:
        reply = await client.chat("qwen2.5-1.5b", HELLO, stream=stream)
    assert reply.content == "Hello from qwen2.5-1.5b"
    assert reply.done_reason == "stop"


async def test_stream_chat_yields_chunks(llamacpp):
    async with EngineClient(llamacpp.url) as client:
        chunks = [chunk async for chunk in client.stream_chat("gemma3-270m", HELLO)]
    assert [c.content for c in chunks] == ["Hello ", "from ", "gemma3-270m", ""]
    assert chunks[-1].done_reason == "stop"


def test_the_records_keep_their_field_descriptions_in_json_schema():
    # The MCP server's output schemas describe these plain dataclasses' fields from the docstrings under them.
    loaded = TypeAdapter(LoadedModel).json_schema()["properties"]
    assert loaded["size_vram_bytes"]["description"] == "Part of size_bytes in GPU memory"
    assert TypeAdapter(ModelInfo).json_schema()["properties"]["quantization"]["description"] == "e.g. Q4_K_M"
