"""The exporter's exposition, as the real collector renders it, summarised."""

from __future__ import annotations

from pathlib import Path

import pytest
from claw.crush.metrics_summary import fetch_summary, metrics_url, summarize
from claw.engine.errors import EngineDown
from claw.exporters.crush import CrushCollector
from prometheus_client import CollectorRegistry, generate_latest


def exposition(sysfs_root: Path, engine: str | None = None, engine_url: str = "") -> str:
    """What the real crush exporter serves for a sysfs tree (and an engine, when given)."""
    registry = CollectorRegistry()
    registry.register(CrushCollector(sysfs_root, engine=engine, engine_url=engine_url or "http://127.0.0.1:9"))
    return generate_latest(registry).decode()


def test_jetson_tree_summary(jetson_root):
    summary = summarize(exposition(jetson_root))
    assert summary.available == ["gpu", "power", "thermal", "memory", "nvpmodel"]
    assert summary.unavailable == ["engine"]
    assert summary.gpu_load_percent == 12.3
    assert summary.gpu_frequency_mhz == 306.0
    assert summary.memory_total_gib == pytest.approx(7.44, abs=0.01)
    assert summary.memory_available_gib == pytest.approx(5.34, abs=0.01)
    assert summary.memory_used_percent == pytest.approx(28.2, abs=0.1)
    assert summary.power_watts == pytest.approx(5.131)
    rails = {rail.rail: rail for rail in summary.power_rails}
    assert set(rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    assert rails["VDD_SOC"].volts == pytest.approx(5.08) and rails["VDD_SOC"].amperes == pytest.approx(0.286)
    assert summary.temperatures_celsius["tj-thermal"] == 48.6
    assert summary.max_temperature_celsius == 48.6
    assert summary.throttling is False and summary.tripped_zones == []
    assert summary.power_mode == "MAXN_SUPER"
    assert summary.engine is None  # this exporter was run without an engine


def test_missing_sources_are_unavailable_not_zero(tmp_path):
    summary = summarize(exposition(tmp_path))
    assert summary.available == []
    assert set(summary.unavailable) == {"gpu", "power", "thermal", "memory", "nvpmodel", "engine"}
    for field in ("gpu_load_percent", "memory_total_gib", "power_watts", "power_rails", "temperatures_celsius"):
        assert getattr(summary, field) is None, field
    assert summary.throttling is None


def test_engine_from_a_live_engine(jetson_root, ollama):
    summary = summarize(exposition(jetson_root, "ollama", ollama.url))
    assert "engine" in summary.available
    engine = summary.engine
    assert (engine.engine, engine.up, engine.version) == ("ollama", True, "0.12.6")
    (model,) = engine.loaded
    assert model.name == "qwen3:4b" and model.context_length == 4096
    assert model.vram_gib == pytest.approx(2497293931 / 2**30, abs=0.01)
    assert model.ram_gib == pytest.approx(600_000_000 / 2**30, abs=0.01)


def test_engine_down_is_reported_down(jetson_root, closed_port_url):
    summary = summarize(exposition(jetson_root, "llamacpp", closed_port_url))
    assert "engine" in summary.unavailable
    assert summary.engine.up is False and summary.engine.loaded == []


def test_tripped_zone_means_throttling():
    text = (
        'crush_source_available{source="thermal"} 1\n'
        'crush_temperature_celsius{zone="gpu-thermal"} 96.5\n'
        'crush_thermal_trip_exceeded{zone="gpu-thermal"} 1\n'
        'crush_thermal_trip_exceeded{zone="cpu-thermal"} 0\n'
    )
    summary = summarize(text)
    assert summary.throttling is True and summary.tripped_zones == ["gpu-thermal"]
    assert summary.unavailable == ["gpu", "power", "memory", "nvpmodel", "engine"]


def test_metrics_url():
    assert metrics_url("http://crush:9811") == "http://crush:9811/metrics"
    assert metrics_url("http://crush:9811/") == "http://crush:9811/metrics"
    assert metrics_url("http://crush:9811/metrics") == "http://crush:9811/metrics"


@pytest.mark.anyio
async def test_fetch_from_the_real_exporter(crush_exporter):
    summary = await fetch_summary(crush_exporter, timeout=5)
    assert summary.gpu_load_percent == 12.3 and summary.unavailable == ["engine"]


@pytest.mark.anyio
async def test_fetch_failures_name_the_exporter(closed_port_url, ollama):
    with pytest.raises(EngineDown, match=r"nothing listens on 127\.0\.0\.1:\d+ \(connection refused\)") as caught:
        await fetch_summary(closed_port_url, timeout=2)
    assert "the crush metrics exporter is stopped or still starting" in str(caught.value)
    with pytest.raises(EngineDown, match="metrics exporter is not working"):
        await fetch_summary(ollama.url, timeout=2)  # Ollama's port has no /metrics
