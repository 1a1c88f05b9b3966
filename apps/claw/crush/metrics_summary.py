"""A readable summary of the crush exporter's ``/metrics`` (see :mod:`claw.exporters.crush`): GPU load, memory,
power rails, temperatures, throttling and the engine.

The exporter leaves out every value of a source it could not read and says ``crush_source_available 0`` for it;
the summary keeps that distinction: such fields are None and the source is listed in ``unavailable``, never 0.
"""

from __future__ import annotations

from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

from claw.engine import errors
from claw.tls import client_context

SOURCES = ("gpu", "power", "thermal", "memory", "nvpmodel", "engine")
SERVICE = "metrics exporter"
_GIB = float(1 << 30)

# metric name -> [(labels, value)]
Samples = dict[str, list[tuple[dict[str, str], float]]]


class PowerRail(BaseModel):
    rail: str
    watts: float
    volts: float | None = None
    amperes: float | None = None


class ModelMemory(BaseModel):
    name: str
    ram_gib: float | None = None
    vram_gib: float | None = None
    context_length: int | None = None


class EngineSummary(BaseModel):
    engine: str
    up: bool
    version: str | None = None
    loaded: list[ModelMemory] = Field(default_factory=list)


class GpuSummary(BaseModel):
    available: list[str] = Field(description="Sources the exporter read")
    unavailable: list[str] = Field(description="Sources the exporter could not read; their fields are null")
    gpu_load_percent: float | None = None
    gpu_frequency_mhz: float | None = None
    memory_total_gib: float | None = Field(None, description="RAM shared by CPU and GPU")
    memory_available_gib: float | None = None
    memory_used_percent: float | None = None
    power_watts: float | None = Field(None, description="Whole module input (VDD_IN rail)")
    power_rails: list[PowerRail] | None = None
    temperatures_celsius: dict[str, float] | None = None
    max_temperature_celsius: float | None = None
    throttling: bool | None = Field(None, description="A thermal zone reached its passive/hot trip point")
    tripped_zones: list[str] = Field(default_factory=list)
    power_mode: str | None = None
    engine: EngineSummary | None = None


def _samples(text: str) -> Samples:
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def _one(samples: Samples, name: str) -> float | None:
    values = samples.get(name)
    return values[0][1] if values else None


def _by(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {labels[label]: value for labels, value in samples.get(name, []) if label in labels}


def _gib(value: float | None) -> float | None:
    return None if value is None else round(value / _GIB, 2)


def summarize(text: str) -> GpuSummary:
    """Summarise one exposition of the crush exporter; a source it does not report counts as unavailable."""
    samples = _samples(text)
    flags = _by(samples, "crush_source_available", "source")
    up = {source for source in SOURCES if flags.get(source) == 1.0}
    summary = GpuSummary(available=[s for s in SOURCES if s in up], unavailable=[s for s in SOURCES if s not in up])
    if "gpu" in up:
        load = _one(samples, "crush_gpu_load_ratio")
        frequency = _one(samples, "crush_gpu_frequency_hertz")
        summary.gpu_load_percent = None if load is None else round(load * 100, 1)
        summary.gpu_frequency_mhz = None if frequency is None else round(frequency / 1e6, 1)
    if "memory" in up:
        total = _one(samples, "crush_memory_total_bytes")
        free = _one(samples, "crush_memory_available_bytes")
        summary.memory_total_gib, summary.memory_available_gib = _gib(total), _gib(free)
        if total and free is not None:
            summary.memory_used_percent = round((1 - free / total) * 100, 1)
    if "power" in up:
        watts = _by(samples, "crush_power_rail_watts", "rail")
        volts = _by(samples, "crush_power_rail_volts", "rail")
        amperes = _by(samples, "crush_power_rail_amperes", "rail")
        summary.power_rails = [
            PowerRail(rail=rail, watts=round(value, 3), volts=volts.get(rail), amperes=amperes.get(rail))
            for rail, value in watts.items()
        ]
        summary.power_watts = round(watts["VDD_IN"], 3) if "VDD_IN" in watts else None
    if "thermal" in up:
        celsius = _by(samples, "crush_temperature_celsius", "zone")
        temperatures = {zone: round(value, 1) for zone, value in celsius.items()}
        summary.temperatures_celsius = temperatures
        summary.max_temperature_celsius = max(temperatures.values(), default=None)
        trips = _by(samples, "crush_thermal_trip_exceeded", "zone")
        summary.tripped_zones = sorted(zone for zone, value in trips.items() if value >= 1)
        summary.throttling = bool(summary.tripped_zones) if trips else None
    if "nvpmodel" in up:
        modes = samples.get("crush_power_mode_info", [])
        summary.power_mode = (modes[0][0].get("mode") or modes[0][0].get("id")) if modes else None
    summary.engine = _engine(samples, "engine" in up)
    return summary


def _engine(samples: Samples, up: bool) -> EngineSummary | None:
    states = samples.get("crush_engine_up", [])
    if not states:
        return None  # the exporter runs without an engine
    info = samples.get("crush_engine_info", [])
    memory: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, value in samples.get("crush_model_memory_bytes", []):
        memory[labels.get("model", "")][labels.get("kind", "")] = value
    contexts = _by(samples, "crush_model_context_length", "model")
    loaded = [
        ModelMemory(
            name=name,
            ram_gib=_gib(memory[name].get("ram")),
            vram_gib=_gib(memory[name].get("vram")),
            context_length=int(contexts[name]) if name in contexts else None,
        )
        for name in _by(samples, "crush_model_loaded_info", "model")
    ]
    return EngineSummary(
        engine=states[0][0].get("engine", "unknown"),
        up=up and states[0][1] == 1.0,
        version=info[0][0].get("version") if info else None,
        loaded=loaded,
    )


def metrics_url(url: str) -> str:
    """``http://crush:9811`` or ``http://crush:9811/metrics`` -> the latter."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/metrics")) if parsed.path in ("", "/") else url


async def fetch_summary(
    url: str, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None
) -> GpuSummary:
    """Scrape the exporter once and summarise it; failures are :class:`claw.engine.errors.CrushError`."""
    url = metrics_url(url)
    address = errors.address_of(url)
    action = f"GET {httpx.URL(url).path}"
    try:
        async with httpx.AsyncClient(
            timeout=timeout, transport=transport, trust_env=False, verify=client_context()
        ) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        raise errors.from_exception(exc, address, action, timeout, service=SERVICE) from exc
    if response.is_error:
        raise errors.from_response(
            response.status_code, response.content, address=address, action=action, engine="exporter", service=SERVICE
        )
    try:
        return summarize(response.text)
    except ValueError as exc:  # the parser's complaint about text that is not the Prometheus format
        raise errors.EngineDown(address, f"{action} did not answer Prometheus text ({exc})", service=SERVICE) from None
