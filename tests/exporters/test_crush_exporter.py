"""The crush collector, its exposition (checked by promtool when present) and the exporter process."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from claw.exporters.crush import FAMILIES, SOURCES, CrushCollector, main, parse_listen
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

VALUE_SOURCES = ("gpu", "power", "thermal", "memory", "nvpmodel")


def registry_for(collector: CrushCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def emitted_names(registry: CollectorRegistry) -> set[str]:
    return {family.name for family in registry.collect() if family.samples}


def test_fixture_tree_values(jetson_root):
    reg = registry_for(CrushCollector(jetson_root, engine=None))
    value = reg.get_sample_value
    assert value("crush_gpu_load_ratio") == pytest.approx(0.123)
    assert value("crush_gpu_frequency_hertz") == 306e6
    assert value("crush_power_rail_watts", {"rail": "VDD_IN"}) == pytest.approx(5.1308)
    assert value("crush_power_rail_volts", {"rail": "VDD_CPU_GPU_CV"}) == pytest.approx(5.08)
    assert value("crush_power_rail_amperes", {"rail": "VDD_SOC"}) == pytest.approx(0.286)
    assert value("crush_temperature_celsius", {"zone": "tj-thermal"}) == pytest.approx(48.625)
    assert value("crush_temperature_celsius", {"zone": "cv0-thermal"}) is None
    assert value("crush_thermal_trip_exceeded", {"zone": "cpu-thermal"}) == 0
    assert value("crush_thermal_trip_exceeded", {"zone": "soc0-thermal"}) is None
    assert value("crush_memory_total_bytes") == 7802880 * 1024
    assert value("crush_memory_available_bytes") == 5601296 * 1024
    assert value("crush_power_mode_info", {"mode": "MAXN_SUPER", "id": "2"}) == 1
    for source in VALUE_SOURCES:
        assert value("crush_source_available", {"source": source}) == 1, source
    assert value("crush_source_available", {"source": "engine"}) == 0
    assert value("crush_engine_up", {"engine": "ollama"}) is None
    assert value("crush_scrape_duration_seconds") >= 0


def test_empty_root_reports_sources_missing_and_no_values(tmp_path):
    reg = registry_for(CrushCollector(tmp_path, engine=None))
    assert emitted_names(reg) == {"crush_source_available", "crush_scrape_duration_seconds"}
    for source in SOURCES:
        assert reg.get_sample_value("crush_source_available", {"source": source}) == 0, source


def test_each_scrape_reads_fresh_values(tmp_path, jetson_root):
    shutil.copytree(jetson_root, tmp_path / "root")
    load = tmp_path / "root/sys/devices/platform/bus@0/17000000.gpu/load"
    reg = registry_for(CrushCollector(tmp_path / "root", engine=None))
    assert reg.get_sample_value("crush_gpu_load_ratio") == pytest.approx(0.123)
    load.write_text("870\n")
    assert reg.get_sample_value("crush_gpu_load_ratio") == pytest.approx(0.87)


def test_registering_does_not_read_the_sources(closed_port_url, caplog):
    with caplog.at_level(logging.WARNING, logger="claw.exporters.crush"):
        registry_for(CrushCollector("/nonexistent", engine="ollama", engine_url=closed_port_url))
    assert caplog.records == []


def test_ollama_models(tmp_path, fake_engine, ollama_routes):
    reg = registry_for(CrushCollector(tmp_path, engine="ollama", engine_url=fake_engine(ollama_routes)))
    value = reg.get_sample_value
    assert value("crush_engine_up", {"engine": "ollama"}) == 1
    assert value("crush_engine_info", {"engine": "ollama", "version": "0.12.6"}) == 1
    assert value("crush_source_available", {"source": "engine"}) == 1
    assert value("crush_model_loaded_info", {"model": "qwen3:4b"}) == 1
    assert value("crush_model_memory_bytes", {"model": "qwen3:4b", "kind": "vram"}) == 3650000000
    assert value("crush_model_memory_bytes", {"model": "qwen3:4b", "kind": "ram"}) == 4113301824 - 3650000000
    assert value("crush_model_context_length", {"model": "qwen3:4b"}) == 4096


def test_llamacpp_models_without_memory_or_context(tmp_path, fake_engine, llamacpp_routes):
    reg = registry_for(CrushCollector(tmp_path, engine="llamacpp", engine_url=fake_engine(llamacpp_routes)))
    assert reg.get_sample_value("crush_engine_up", {"engine": "llamacpp"}) == 1
    assert reg.get_sample_value("crush_model_loaded_info", {"model": "qwen2.5-1.5b-instruct-q4_k_m.gguf"}) == 1
    names = emitted_names(reg)
    assert "crush_engine_info" not in names
    assert "crush_model_memory_bytes" not in names
    assert "crush_model_context_length" not in names


LLAMACPP_CONFIG = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp" / "config.json"


def test_llamacpp_context_length_from_the_server_config(tmp_path, fake_engine, llamacpp_routes):
    # The sample is shaped like the llamacpp role's config.json.j2 output; the name is the model_alias.
    collector = CrushCollector(
        tmp_path, engine="llamacpp", engine_url=fake_engine(llamacpp_routes), llamacpp_config=LLAMACPP_CONFIG
    )
    reg = registry_for(collector)
    assert reg.get_sample_value("crush_model_context_length", {"model": "qwen2.5-1.5b-instruct-q4_k_m.gguf"}) == 4096
    # Only served models are reported: gemma3-270m is configured but /v1/models does not list it here.
    assert reg.get_sample_value("crush_model_context_length", {"model": "gemma3-270m"}) is None


def test_llamacpp_config_changes_are_picked_up_and_a_missing_one_is_logged_once(
    tmp_path, fake_engine, llamacpp_routes, caplog
):
    config = tmp_path / "config.json"
    url = fake_engine(llamacpp_routes)
    reg = registry_for(CrushCollector(tmp_path, engine="llamacpp", engine_url=url, llamacpp_config=config))
    model = {"model": "qwen2.5-1.5b-instruct-q4_k_m.gguf"}
    with caplog.at_level(logging.WARNING, logger="claw.exporters.engine"):
        assert reg.get_sample_value("crush_model_context_length", model) is None
        assert reg.get_sample_value("crush_model_loaded_info", model) == 1
        reg.get_sample_value("crush_model_context_length", model)
    assert len([r for r in caplog.records if "no context sizes" in r.getMessage()]) == 1
    # No alias: the id is the model path; no n_ctx: llama-cpp-python's default.
    config.write_text(json.dumps({"models": [{"model": "qwen2.5-1.5b-instruct-q4_k_m.gguf"}]}))
    assert reg.get_sample_value("crush_model_context_length", model) == 2048
    config.write_text(json.dumps({"models": [{"model": "/m/q.gguf", "model_alias": model["model"], "n_ctx": 8192}]}))
    assert reg.get_sample_value("crush_model_context_length", model) == 8192


def test_llamacpp_config_is_ignored_for_ollama(tmp_path, fake_engine, ollama_routes):
    collector = CrushCollector(
        tmp_path, engine="ollama", engine_url=fake_engine(ollama_routes), llamacpp_config=LLAMACPP_CONFIG
    )
    assert collector.llamacpp_config is None


def test_llamacpp_exposition_passes_promtool(jetson_root, fake_engine, llamacpp_routes):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu package 'prometheus' provides it)")
    collector = CrushCollector(
        jetson_root, engine="llamacpp", engine_url=fake_engine(llamacpp_routes), llamacpp_config=LLAMACPP_CONFIG
    )
    text = generate_latest(registry_for(collector))
    assert b'crush_model_context_length{model="qwen2.5-1.5b-instruct-q4_k_m.gguf"} 4096.0' in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False)
    report = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and report.strip() == "", report


def test_busy_llamacpp_keeps_its_last_known_models(tmp_path, fake_engine, llamacpp_routes):
    routes = dict(llamacpp_routes)
    collector = CrushCollector(tmp_path, engine="llamacpp", engine_url=fake_engine(routes), engine_timeout=0.2)
    model = {"model": "qwen2.5-1.5b-instruct-q4_k_m.gguf"}
    assert registry_for(collector).get_sample_value("crush_model_loaded_info", model) == 1
    routes["/v1/models"] = (*routes["/v1/models"], 2.0)  # a generation holds the model lock
    busy = registry_for(collector)
    assert busy.get_sample_value("crush_engine_up", {"engine": "llamacpp"}) == 1
    assert busy.get_sample_value("crush_model_loaded_info", model) == 1


def test_engine_down_is_up_zero_and_logged_once(tmp_path, closed_port_url, caplog):
    collector = CrushCollector(tmp_path, engine="ollama", engine_url=closed_port_url)
    reg = registry_for(collector)
    with caplog.at_level(logging.WARNING, logger="claw.exporters.crush"):
        for _ in range(2):
            assert reg.get_sample_value("crush_engine_up", {"engine": "ollama"}) == 0
            assert reg.get_sample_value("crush_source_available", {"source": "engine"}) == 0
            assert "crush_engine_info" not in emitted_names(reg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ConnectError" in warnings[0]


def test_unknown_engine_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown engine"):
        CrushCollector(tmp_path, engine="vllm")


def full_exposition(jetson_root, url: str, tmp_path: Path) -> bytes:
    """Every source: the simulated Jetson, the engine and a pull result."""
    now = "2026-03-01T03:14:30+00:00"
    pull_result = tmp_path / "pull-result.json"
    pull_result.write_text(json.dumps({"revision": "a" * 40, "outcome": "updated", "started": now, "finished": now}))
    collector = CrushCollector(jetson_root, engine="ollama", engine_url=url, pull_result_file=pull_result)
    return generate_latest(registry_for(collector))


def test_exposition_has_help_type_and_every_family(jetson_root, fake_engine, ollama_routes, tmp_path):
    text = full_exposition(jetson_root, fake_engine(ollama_routes), tmp_path).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == set(FAMILIES)
    for name, family in families.items():
        assert family.type == "gauge", name
        assert family.documentation, name
        assert not name.endswith("_total"), name


def test_exposition_passes_promtool(jetson_root, fake_engine, ollama_routes, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu package 'prometheus' provides it)")
    text = full_exposition(jetson_root, fake_engine(ollama_routes), tmp_path)
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False)
    report = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, report
    assert report.strip() == "", report


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0:9811", ("0.0.0.0", 9811)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        (":9811", ("0.0.0.0", 9811)),
        ("[::]:9811", ("::", 9811)),
    ],
)
def test_parse_listen(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9811x", "host", "host:99999"])
def test_parse_listen_rejects(value):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen(value)


def test_main_rejects_bad_engine(capsys):
    with pytest.raises(SystemExit):
        main(["--engine", "vllm"])
    assert "invalid choice" in capsys.readouterr().err


def test_process_serves_metrics_and_exits_cleanly_on_sigterm(jetson_root, exporter_process):
    command = ["claw.exporters.crush", "--listen", "127.0.0.1:0", "--engine", "none"]
    text = exporter_process([*command, "--sysfs-root", str(jetson_root)])
    assert 'crush_power_rail_watts{rail="VDD_IN"}' in text
    assert 'crush_source_available{source="engine"} 0.0' in text


def test_parser_takes_the_llamacpp_config():
    from claw.exporters.crush import build_parser

    listen = ["--listen", "127.0.0.1:0"]
    assert build_parser().parse_args(
        [*listen, "--llamacpp-config", "/etc/llamacpp/config.json"]
    ).llamacpp_config == Path("/etc/llamacpp/config.json")
    assert build_parser().parse_args(listen).llamacpp_config is None


def test_listen_is_required(capsys):
    """The unit passes --listen from appliance_services; the exporter knows no port of its own."""
    with pytest.raises(SystemExit):
        main(["--engine", "none"])
    assert "the following arguments are required: --listen" in capsys.readouterr().err


def test_an_engine_needs_its_url(capsys):
    with pytest.raises(SystemExit):
        main(["--listen", "127.0.0.1:0", "--engine", "llamacpp"])
    assert "--engine-url is required with --engine llamacpp" in capsys.readouterr().err
    with pytest.raises(ValueError, match="engine 'ollama' needs engine_url"):
        CrushCollector(Path("/nonexistent"), engine="ollama")
