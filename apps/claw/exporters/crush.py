"""Prometheus exporter for crush, the Jetson Orin Nano inference node.

A custom collector reads sysfs and the engine API afresh on every scrape. Values are in base units (ratio,
hertz, volts, amperes, watts, Celsius, bytes, seconds). A source that is missing (a non-Jetson host, an engine
that is down) emits no value metrics at all; ``crush_source_available{source}`` says 0 for it instead.

The ``pull`` source is the node's last pull-mode run (``--pull-result-file``, :mod:`claw.exporters.pull`): the
cluster's claw node reads ``crush_pull_last_outcome`` here before its own pulled run switches anything.

Run: ``python -m claw.exporters.crush --listen 0.0.0.0:PORT --sysfs-root / --engine llamacpp
--engine-url http://127.0.0.1:ENGINE_PORT --pull-result-file /var/lib/claw/pull-result.json``; Prometheus scrapes
``http://crush:PORT/metrics``. ``--listen`` is required, and ``--engine-url`` unless ``--engine none``: the unit the
exporters role renders passes both from ``appliance_services``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from claw.exporters import jetson_sysfs, pull
from claw.exporters.engine import (
    DEFAULT_TIMEOUT_S,
    ENGINES,
    EngineStatus,
    LlamaCppConfig,
    LoadedModel,
    read_engine,
)
from claw.exporters.serving import parse_listen, serve_until_stopped

log = logging.getLogger("claw.exporters.crush")

SOURCES = ("gpu", "power", "thermal", "memory", "nvpmodel", "engine", "pull")

# name -> (help, label names)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "crush_gpu_load_ratio": ("GPU load from the GPU devfreq load file, 0..1.", ()),
    "crush_gpu_frequency_hertz": ("Current GPU clock from the GPU devfreq cur_freq.", ()),
    "crush_power_rail_watts": ("Power on an INA3221 rail (VDD_IN is the whole module input).", ("rail",)),
    "crush_power_rail_volts": ("Bus voltage on an INA3221 rail.", ("rail",)),
    "crush_power_rail_amperes": ("Current on an INA3221 rail.", ("rail",)),
    "crush_temperature_celsius": ("Temperature of a thermal zone, labelled by its type.", ("zone",)),
    "crush_thermal_trip_exceeded": (
        "1 when a zone has reached its lowest passive or hot trip point, else 0; only zones that have one.",
        ("zone",),
    ),
    "crush_memory_total_bytes": ("MemTotal from /proc/meminfo (RAM shared by CPU and GPU).", ()),
    "crush_memory_available_bytes": ("MemAvailable from /proc/meminfo.", ()),
    "crush_power_mode_info": (
        "The nvpmodel power mode in force; mode is empty when the conf does not name it.",
        ("mode", "id"),
    ),
    "crush_engine_up": ("1 when the inference engine answered its API and is ready, else 0.", ("engine",)),
    "crush_engine_info": ("The inference engine's version, when it reports one.", ("engine", "version")),
    "crush_model_loaded_info": ("A model the inference engine has loaded.", ("model",)),
    "crush_model_memory_bytes": (
        "Memory held by a loaded model: kind=vram is the part in GPU memory, kind=ram the rest (sum = total).",
        ("model", "kind"),
    ),
    "crush_model_context_length": ("Context length, in tokens, a loaded model was loaded with.", ("model",)),
    **pull.families("crush"),
    "crush_scrape_duration_seconds": ("Time this exporter took to read all its sources.", ()),
    "crush_source_available": (
        "1 when a source (" + ", ".join(SOURCES) + ") was read.",
        ("source",),
    ),
}


def new_families() -> dict[str, GaugeMetricFamily]:
    """Empty gauge families for every metric this exporter can emit."""
    return {
        name: GaugeMetricFamily(name, help_text, labels=list(labels)) for name, (help_text, labels) in FAMILIES.items()
    }


class CrushCollector(Collector):
    """Reads every source on each ``collect()``; unavailable sources emit only ``crush_source_available 0``."""

    def __init__(
        self,
        sysfs_root: Path | str = Path("/"),
        engine: str | None = "ollama",
        engine_url: str | None = None,
        engine_timeout: float = DEFAULT_TIMEOUT_S,
        llamacpp_config: Path | str | None = None,
        pull_result_file: Path | str | None = None,
    ) -> None:
        if engine is not None and engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
        if engine is not None and not engine_url:
            raise ValueError(f"engine {engine!r} needs engine_url, its API's base URL")
        self.sysfs_root = Path(sysfs_root)
        self.engine = engine
        self.engine_url = engine_url or ""  # only read when there is an engine
        self.engine_timeout = engine_timeout
        # llama.cpp's API does not say a model's context size; its server's config file does.
        self.llamacpp_config = LlamaCppConfig(llamacpp_config) if llamacpp_config and engine == "llamacpp" else None
        self._last_engine_error: str | None = None
        self.pull_result_file = Path(pull_result_file) if pull_result_file else None
        self._last_pull_error: str | None = None
        # What a busy engine served at the last scrape it answered in full.
        self._last_models: tuple[LoadedModel, ...] = ()

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not read the sources."""
        return list(new_families().values())

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        families = new_families()
        available = {
            "gpu": self._add_gpu(families),
            "power": self._add_power(families),
            "thermal": self._add_thermal(families),
            "memory": self._add_memory(families),
            "nvpmodel": self._add_power_mode(families),
            "engine": self._add_engine(families),
            "pull": self._add_pull(families),
        }
        for source in SOURCES:
            families["crush_source_available"].add_metric([source], 1.0 if available[source] else 0.0)
        families["crush_scrape_duration_seconds"].add_metric([], time.perf_counter() - started)
        return [family for family in families.values() if family.samples]

    def _add_gpu(self, families: dict[str, GaugeMetricFamily]) -> bool:
        load = jetson_sysfs.read_gpu_load(self.sysfs_root)
        frequency = jetson_sysfs.read_gpu_frequency(self.sysfs_root)
        if load is not None:
            families["crush_gpu_load_ratio"].add_metric([], load)
        if frequency is not None:
            families["crush_gpu_frequency_hertz"].add_metric([], frequency)
        return load is not None or frequency is not None

    def _add_power(self, families: dict[str, GaugeMetricFamily]) -> bool:
        rails = jetson_sysfs.read_power_rails(self.sysfs_root)
        for rail in rails:
            families["crush_power_rail_watts"].add_metric([rail.name], rail.watts)
            families["crush_power_rail_volts"].add_metric([rail.name], rail.volts)
            families["crush_power_rail_amperes"].add_metric([rail.name], rail.amperes)
        return bool(rails)

    def _add_thermal(self, families: dict[str, GaugeMetricFamily]) -> bool:
        temperatures = jetson_sysfs.read_temperatures(self.sysfs_root)
        for zone, celsius in temperatures.items():
            families["crush_temperature_celsius"].add_metric([zone], celsius)
        for zone, exceeded in jetson_sysfs.read_trip_exceeded(self.sysfs_root).items():
            families["crush_thermal_trip_exceeded"].add_metric([zone], 1.0 if exceeded else 0.0)
        return bool(temperatures)

    def _add_memory(self, families: dict[str, GaugeMetricFamily]) -> bool:
        memory = jetson_sysfs.read_memory(self.sysfs_root)
        if memory is None:
            return False
        families["crush_memory_total_bytes"].add_metric([], memory.total_bytes)
        families["crush_memory_available_bytes"].add_metric([], memory.available_bytes)
        return True

    def _add_power_mode(self, families: dict[str, GaugeMetricFamily]) -> bool:
        mode = jetson_sysfs.read_power_mode(self.sysfs_root)
        if mode is None:
            return False
        families["crush_power_mode_info"].add_metric([mode.name or "", str(mode.id)], 1.0)
        return True

    def _add_engine(self, families: dict[str, GaugeMetricFamily]) -> bool:
        if self.engine is None:
            return False
        status = read_engine(self.engine, self.engine_url, timeout=self.engine_timeout)
        self._log_engine_error(status)
        families["crush_engine_up"].add_metric([status.engine], 1.0 if status.up else 0.0)
        if not status.up:
            return False
        if status.version:
            families["crush_engine_info"].add_metric([status.engine, status.version], 1.0)
        if not status.busy:
            config = self.llamacpp_config
            self._last_models = config.apply(status.models) if config is not None else status.models
        for model in self._last_models:
            families["crush_model_loaded_info"].add_metric([model.name], 1.0)
            if model.size_bytes is not None and model.size_vram_bytes is not None:
                vram = min(model.size_vram_bytes, model.size_bytes)
                families["crush_model_memory_bytes"].add_metric([model.name, "vram"], vram)
                families["crush_model_memory_bytes"].add_metric([model.name, "ram"], model.size_bytes - vram)
            if model.context_length is not None:
                families["crush_model_context_length"].add_metric([model.name], model.context_length)
        return True

    def _add_pull(self, families: dict[str, GaugeMetricFamily]) -> bool:
        if self.pull_result_file is None:
            return False
        result, error = pull.read_result(self.pull_result_file)
        if error != self._last_pull_error and error:
            log.warning("pull: %s", error)
        self._last_pull_error = error
        if result is None:
            return False
        pull.add_metrics(families, "crush", result)
        return True

    def _log_engine_error(self, status: EngineStatus) -> None:
        """Log an engine problem when it starts or changes, and the recovery, not on every scrape."""
        if status.error != self._last_engine_error:
            if status.error:
                log.warning("%s at %s: %s", status.engine, self.engine_url, status.error)
            else:
                log.info("%s at %s answers again", status.engine, self.engine_url)
        self._last_engine_error = status.error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw-crush-exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=parse_listen, required=True, help="HOST:PORT to serve /metrics on")
    parser.add_argument("--sysfs-root", type=Path, default=Path("/"), help="directory standing for / (default /)")
    parser.add_argument(
        "--engine", choices=[*ENGINES, "none"], default="ollama", help="inference engine API (default %(default)s)"
    )
    parser.add_argument(
        "--engine-url", help="engine base URL, e.g. http://127.0.0.1:PORT (required unless --engine none)"
    )
    parser.add_argument("--engine-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per engine request")
    parser.add_argument(
        "--llamacpp-config",
        type=Path,
        default=None,
        help="llama-cpp-python server config (JSON) whose n_ctx gives the models' context length (llamacpp only)",
    )
    parser.add_argument(
        "--pull-result-file",
        type=Path,
        default=None,
        help=f"the node's pull result, e.g. {pull.DEFAULT_RESULT_FILE} (default: none, no pull source)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.engine != "none" and not args.engine_url:
        parser.error(f"--engine-url is required with --engine {args.engine} (or give --engine none)")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = CollectorRegistry()
    registry.register(
        CrushCollector(
            sysfs_root=args.sysfs_root,
            engine=None if args.engine == "none" else args.engine,
            engine_url=args.engine_url,
            engine_timeout=args.engine_timeout,
            llamacpp_config=args.llamacpp_config,
            pull_result_file=args.pull_result_file,
        )
    )
    host, port = args.listen
    serve_until_stopped(registry, host, port, f"sysfs root {args.sysfs_root}, engine {args.engine}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
