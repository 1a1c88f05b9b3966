"""The `crush` MCP server driven in-process by the SDK client, against the fake engines and the real exporter."""

from __future__ import annotations

import pytest
from claw.engine.client import EngineClient
from claw.mcp.crush import Settings, build_server, create
from claw.mcp.registry import ConfigError, ProcessConfig, server_settings
from mcp import Client

from tests.doubles.http import closed_port_url
from tests.mcp.tool_results import text_of

EXPECTED_TOOLS = {"engine_health", "list_models", "loaded_models", "gpu_summary", "pull_model", "unload_model"}

pytestmark = pytest.mark.anyio


async def test_tools_and_honest_annotations(ollama):
    async with Client(build_server(EngineClient(ollama.url), "http://127.0.0.1:9/metrics")) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for name in ("engine_health", "list_models", "loaded_models", "gpu_summary"):
        ann = tools[name].annotations
        assert (ann.read_only_hint, ann.open_world_hint) == (True, False), name
    pull, unload = tools["pull_model"].annotations, tools["unload_model"].annotations
    assert (pull.read_only_hint, pull.destructive_hint, pull.idempotent_hint, pull.open_world_hint) == (
        False,
        False,
        True,
        True,  # it downloads from the Ollama library on the internet
    )
    assert (unload.read_only_hint, unload.destructive_hint, unload.idempotent_hint, unload.open_world_hint) == (
        False,
        False,
        True,
        False,
    )
    for tool in tools.values():
        assert tool.description
    model_schema = tools["pull_model"].input_schema
    assert model_schema["required"] == ["model"]  # the Context parameter is not an argument
    assert model_schema["properties"]["model"]["maxLength"] == 256


async def test_optional_tools_follow_settings(ollama):
    async with Client(build_server(EngineClient(ollama.url), None, allow_pull=False)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == EXPECTED_TOOLS - {"pull_model", "gpu_summary"}


async def test_models_and_loaded(ollama):
    async with Client(build_server(EngineClient(ollama.url))) as client:
        listed = await client.call_tool("list_models", {})
        loaded = await client.call_tool("loaded_models", {})
    assert not listed.is_error, text_of(listed)
    assert listed.structured_content["engine"] == "ollama"
    assert [m["name"] for m in listed.structured_content["models"]] == ["qwen3:4b", "llama3.2:1b"]
    (model,) = loaded.structured_content["models"]
    assert (model["name"], model["context_length"], model["size_vram_bytes"]) == ("qwen3:4b", 4096, 2497293931)


async def test_pull_reports_progress_notifications(ollama):
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with Client(build_server(EngineClient(ollama.url))) as client:
        result = await client.call_tool("pull_model", {"model": "gemma3:270m"}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    size = sum(ollama.library["gemma3:270m"])
    assert result.structured_content == {"model": "gemma3:270m", "status": "success", "total_bytes": size}
    values = [progress for progress, _, _ in updates]
    assert len(updates) >= 4
    assert values == sorted(set(values))  # strictly increasing, as MCP requires
    assert updates[0][2] == "pulling manifest"
    assert updates[-1][0] == size and updates[-1][1] == size
    assert any(message and message.startswith("pulling ") for _, _, message in updates[1:])


async def test_unload_and_its_missing_model_error(ollama):
    async with Client(build_server(EngineClient(ollama.url))) as client:
        unloaded = await client.call_tool("unload_model", {"model": "qwen3:4b"})
        missing = await client.call_tool("unload_model", {"model": "mistral:7b"})
    assert unloaded.structured_content == {"model": "qwen3:4b", "was_loaded": True}
    assert missing.is_error
    assert text_of(missing) == "Error executing tool unload_model: " + (
        "model 'mistral:7b' is not on the crush node (available: qwen3:4b, llama3.2:1b); "
        "add it to crush_models and run playbooks/models.yml, or pull it with pull_model"
    )


async def test_llamacpp_refuses_pull_with_the_ansible_route(llamacpp):
    async with Client(build_server(EngineClient(llamacpp.url))) as client:
        result = await client.call_tool("pull_model", {"model": "qwen3:4b"})
        listed = await client.call_tool("list_models", {})
    assert result.is_error
    assert "llama.cpp engine serves the models Ansible configured" in text_of(result)
    assert "playbooks/models.yml" in text_of(result)
    assert listed.structured_content["engine"] == "llamacpp"


async def test_stopped_engine_on_a_reachable_crush(ollama):
    url = closed_port_url()
    async with Client(build_server(EngineClient(url, timeout=2), url + "/metrics")) as client:
        health = await client.call_tool("engine_health", {})
        listed = await client.call_tool("list_models", {})
        gpu = await client.call_tool("gpu_summary", {})
    assert not health.is_error  # a health probe reports the problem as data
    assert health.structured_content["reachable"] is True  # the node refused: it is up, the engine is not
    assert health.structured_content["ready"] is False
    assert health.structured_content["error_code"] == "engine_down"
    assert listed.is_error and "nothing listens on" in text_of(listed) and "connection refused" in text_of(listed)
    assert "stopped or still starting" in text_of(listed) and "powered on" not in text_of(listed)
    assert gpu.is_error and "crush metrics exporter" in text_of(gpu)


async def test_hung_engine_times_out_with_a_precise_message(ollama):
    ollama.mode = "hung"
    async with Client(build_server(EngineClient(ollama.url, timeout=0.2))) as client:
        result = await client.call_tool("loaded_models", {})
    assert result.is_error
    assert "did not answer GET /api/version within 0.2 s" in text_of(result)


async def test_gpu_summary_from_the_real_exporter(ollama, crush_exporter):
    async with Client(build_server(EngineClient(ollama.url), f"{crush_exporter}/metrics")) as client:
        result = await client.call_tool("gpu_summary", {})
    assert not result.is_error, text_of(result)
    summary = result.structured_content
    assert summary["gpu_load_percent"] == 12.3
    assert summary["power_watts"] == pytest.approx(5.131)
    assert summary["unavailable"] == ["engine"]
    assert summary["throttling"] is False
    assert {rail["rail"] for rail in summary["power_rails"]} == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}


def test_settings_and_registry():
    settings = server_settings("crush", ProcessConfig(), {"engine_url": "http://crush:11434", "engine": "ollama"})
    assert isinstance(settings, Settings)
    assert (settings.port, settings.engine_url, settings.engine) == (None, "http://crush:11434", "ollama")
    # No exporter unless the configuration names one (the rendered /etc/claw/mcp.yml does): no gpu_summary.
    assert settings.exporter_url is None and settings.allow_pull
    assert create(settings).name == "crush"
    for bad in ({"engine_url": "crush:11434"}, {"engine": "vllm"}, {"timeout_seconds": "0"}, {"colour": "red"}):
        with pytest.raises(ConfigError):
            server_settings("crush", ProcessConfig(), bad)
