"""Prometheus exporter for claw, the Raspberry Pi 5 node: hardware, the appliance's services and its power bill.

A custom collector reads every source afresh on each scrape; nothing is cached between scrapes. The network and
process sources (the OpenClaw gateway, the LED daemon, systemctl, the crush exporter) are asked in parallel with
short timeouts, so a scrape takes a few milliseconds and at most about one timeout when something hangs. A source
that is missing or failed emits no value metrics; ``claw_source_available{source}`` says 0 for it instead.

Sources: ``thermal`` (thermal zones), ``throttled`` (firmware ``get_throttled``), ``fan`` (pwm-fan hwmon),
``nvme`` (NVMe identity and hwmon temperature), ``openclaw`` (``GET {gateway}/healthz``), ``leds`` (the LED
daemon's ``get``), ``units`` (``systemctl show -p ActiveState --value``), ``claw_power`` (a configured power file),
``crush_power`` (``crush_power_rail_watts{rail="VDD_IN"}`` from the crush exporter) and ``pull`` (the node's last
pull-mode run, ``/var/lib/claw/pull-result.json``: :mod:`claw.exporters.pull`).

The electricity estimate adds each node's power, measured when its source is available and the configured idle
figure otherwise, and prices it at the current draw: ``watts * 24 h * 30.44 days / 1000 * price per kWh``.

Run: ``python -m claw.exporters.claw --config /etc/claw/claw-exporter.yml`` (the exporters role renders it from
``appliance_services``: ``listen``, ``gateway_url``, ``units``, ...), or with flags, e.g. ``--listen 0.0.0.0:PORT``;
Prometheus scrapes ``http://claw:PORT/metrics``. Every setting of :class:`ClawExporterSettings` may be given in the
YAML file; the flags override the file. ``listen`` has no default: the file or ``--listen`` must name it. The other
sources are left out unless configured (no gateway URL: no openclaw source; no units: no units source).
``--check`` validates the settings and exits (0, or 2 with the reason) without serving: the exporters role runs it
on the controller against the rendered file before it changes the node.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, field_validator

from claw import __version__
from claw.exporters import jetson_sysfs, pi_sysfs, pull
from claw.exporters.serving import parse_listen, serve_until_stopped
from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.leds.protocol import DEFAULT_SOCKET
from claw.leds.state import Level
from claw.tls import client_context

log = logging.getLogger("claw.exporters.claw")

DEFAULT_TIMEOUT_S = 0.5
HOURS_PER_MONTH = 24 * 30.44
SOURCES = ("thermal", "throttled", "fan", "nvme", "openclaw", "leds", "units", "claw_power", "crush_power", "pull")
LED_LEVELS = ("none", *(level.label for level in Level))
ACTIVE_STATES = frozenset({"active", "reloading"})
CRUSH_POWER_METRIC = "crush_power_rail_watts"
CRUSH_POWER_RAIL = "VDD_IN"

# name -> (help, label names)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "claw_temperature_celsius": ("Temperature of a thermal zone, labelled by its type.", ("zone",)),
    "claw_throttled": (
        "Firmware get_throttled flags: 1 when set. Flags ending in _occurred are sticky since boot.",
        ("flag",),
    ),
    "claw_fan_speed_rpm": ("Speed of the pwm-fan cooling fan from its tachometer.", ()),
    "claw_fan_pwm_ratio": ("Duty cycle the pwm-fan driver sets, 0..1.", ()),
    "claw_nvme_info": (
        "An NVMe drive's model and firmware (SMART health needs root and is not read).",
        ("device", "model", "firmware"),
    ),
    "claw_nvme_temperature_celsius": ("Temperature an NVMe drive reports through its hwmon.", ("device", "sensor")),
    "claw_openclaw_up": ("1 when the OpenClaw gateway answered GET /healthz with ok, else 0.", ()),
    "claw_openclaw_probe_seconds": ("Time the last /healthz probe of the OpenClaw gateway took, failed or not.", ()),
    "claw_leds_daemon_up": ("1 when the LED daemon answered on its socket, else 0.", ()),
    "claw_leds_level": ("1 for the level of the LED layer shown now (none: the strip is dark), else 0.", ("level",)),
    "claw_unit_active": ("1 when the systemd unit's ActiveState is active (or reloading), else 0.", ("unit",)),
    "claw_power_watts": (
        "Power drawn by a node: measured when its source is available, else the configured idle figure.",
        ("node", "source"),
    ),
    "claw_power_source_info": (
        "Where each node's power figure comes from: a file, a crush exporter URL, or config.",
        ("node", "source", "origin"),
    ),
    "claw_energy_price_per_kwh": ("Configured electricity price per kWh.", ("currency",)),
    "claw_electricity_cost_per_month": (
        "Estimated cost of a 30.44-day month at the current total draw of all nodes.",
        ("currency",),
    ),
    **pull.families("claw"),
    "claw_build_info": ("The picocluster-claw version this exporter runs; always 1.", ("version",)),
    "claw_scrape_duration_seconds": ("Time this exporter took to read all its sources.", ()),
    "claw_source_available": (
        "1 when a source (" + ", ".join(SOURCES) + ") was read, else 0.",
        ("source",),
    ),
}
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$", max_length=256)]


class ClawExporterSettings(BaseModel):
    """The exporter's settings: the YAML file given with ``--config``, then the flags on top."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # HOST:PORT to serve /metrics on; required to serve (main refuses to start without it).
    listen: str | None = None
    sysfs_root: Path = Path("/")
    # get_throttled; None tries the Pi 5 and the Pi 4 firmware paths. Paths are read under sysfs_root.
    throttled_file: Path | None = None
    # OpenClaw gateway base URL; None leaves the openclaw source out.
    gateway_url: str | None = None
    # LED daemon socket; None leaves the leds source out.
    leds_socket: Path | None = DEFAULT_SOCKET
    # systemd units to report (claw_unit_active); empty leaves the units source out.
    units: tuple[UnitName, ...] = ()
    # Per request: the gateway, the LED daemon, systemctl and the crush exporter are asked in parallel.
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=5)
    # A file holding claw's draw (watts times claw_power_file_scale), e.g. written by a root timer from
    # `vcgencmd pmic_read_adc`, or a hwmon power1_input (microwatts: scale 1e-6).
    claw_power_file: Path | None = None
    claw_power_file_scale: float = Field(default=1.0, gt=0)
    # The crush exporter's metrics URL (http://crush:PORT/metrics) for the measured VDD_IN rail.
    crush_metrics_url: str | None = None
    # Idle draw used when a node's power is not measured; None leaves the node out of the estimate.
    claw_idle_watts: float | None = Field(default=5.0, ge=0)
    crush_idle_watts: float | None = Field(default=9.0, ge=0)
    # The node's last pull-mode run (role pull writes it); None leaves the pull source out.
    pull_result_file: Path | None = None
    price_per_kwh: float = Field(default=0.20, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("gateway_url", "crush_metrics_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value is not None else None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_listen(value)
        except argparse.ArgumentTypeError as err:
            raise ValueError(str(err)) from None
        return value


def load_settings(config: Path | None, overrides: dict[str, Any] | None = None) -> ClawExporterSettings:
    """Settings from an optional YAML file with ``overrides`` (None values are ignored) on top."""
    data: dict[str, Any] = {}
    if config is not None:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{config}: expected a mapping of settings at the top level")
        data.update(loaded or {})
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return ClawExporterSettings.model_validate(data)


# A command runner: argv in, stdout out; raises OSError or subprocess.SubprocessError when the command fails.
Runner = Callable[[Sequence[str]], str]


def run_command(argv: Sequence[str], timeout: float = 2.0) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=True).stdout


@dataclass(frozen=True)
class Reading:
    """What one parallel source returned: a value or, when it failed, the reason to log."""

    value: Any = None
    error: str | None = None
    seconds: float | None = None


def new_families() -> dict[str, GaugeMetricFamily]:
    """Empty gauge families for every metric this exporter can emit."""
    return {
        name: GaugeMetricFamily(name, help_text, labels=list(labels)) for name, (help_text, labels) in FAMILIES.items()
    }


def monthly_cost(watts: float, price_per_kwh: float) -> float:
    """Cost of drawing ``watts`` for a 30.44-day month."""
    return watts * HOURS_PER_MONTH / 1000.0 * price_per_kwh


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ClawCollector(Collector):
    """Reads every source on each ``collect()``; unavailable sources emit only ``claw_source_available 0``."""

    def __init__(self, settings: ClawExporterSettings | None = None, runner: Runner | None = None) -> None:
        self.settings = settings or ClawExporterSettings()
        self.root = self.settings.sysfs_root
        self.runner: Runner = runner or (lambda argv: run_command(argv, timeout=max(self.settings.timeout_seconds, 1)))
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="claw-exporter")
        self._last_error: dict[str, str | None] = {}
        self._errors_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so registering does not read the sources."""
        return list(new_families().values())

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        families = new_families()
        s = self.settings
        pending: dict[str, Future[Reading]] = {}
        if s.gateway_url is not None:
            pending["openclaw"] = self._pool.submit(self._guard, self.probe_gateway)
        if s.leds_socket is not None:
            pending["leds"] = self._pool.submit(self._guard, self.read_leds)
        if s.units:
            pending["units"] = self._pool.submit(self._guard, self.read_units)
        if s.crush_metrics_url is not None:
            pending["crush_power"] = self._pool.submit(self._guard, self.read_crush_power)

        available = {
            "thermal": self._add_thermal(families),
            "throttled": self._add_throttled(families),
            "fan": self._add_fan(families),
            "nvme": self._add_nvme(families),
        }
        claw_watts = (
            pi_sysfs.read_power_file(self.root, s.claw_power_file, s.claw_power_file_scale)
            if s.claw_power_file is not None
            else None
        )
        readings = {source: future.result() for source, future in pending.items()}
        for source, reading in readings.items():
            self._log_change(source, reading.error)

        available["openclaw"] = self._add_openclaw(families, readings.get("openclaw"))
        available["leds"] = self._add_leds(families, readings.get("leds"))
        available["units"] = self._add_units(families, readings.get("units"))
        crush = readings.get("crush_power")
        crush_watts = crush.value if crush is not None and crush.error is None else None
        available["claw_power"] = claw_watts is not None
        available["crush_power"] = crush_watts is not None
        self._add_power(families, claw_watts, crush_watts)
        available["pull"] = self._add_pull(families)

        for source in SOURCES:
            families["claw_source_available"].add_metric([source], 1.0 if available[source] else 0.0)
        families["claw_build_info"].add_metric([__version__], 1.0)
        families["claw_scrape_duration_seconds"].add_metric([], time.perf_counter() - started)
        return [family for family in families.values() if family.samples]

    # --- sysfs -------------------------------------------------------------------------------------------------

    def _add_thermal(self, families: dict[str, GaugeMetricFamily]) -> bool:
        temperatures = jetson_sysfs.read_temperatures(self.root)
        for zone, celsius in temperatures.items():
            families["claw_temperature_celsius"].add_metric([zone], celsius)
        return bool(temperatures)

    def _add_throttled(self, families: dict[str, GaugeMetricFamily]) -> bool:
        mask = pi_sysfs.read_throttled(self.root, self.settings.throttled_file)
        if mask is None:
            return False
        for flag, is_set in pi_sysfs.decode_throttled(mask).items():
            families["claw_throttled"].add_metric([flag], 1.0 if is_set else 0.0)
        return True

    def _add_fan(self, families: dict[str, GaugeMetricFamily]) -> bool:
        fan = pi_sysfs.read_fan(self.root)
        if fan is None:
            return False
        if fan.rpm is not None:
            families["claw_fan_speed_rpm"].add_metric([], fan.rpm)
        if fan.pwm_ratio is not None:
            families["claw_fan_pwm_ratio"].add_metric([], fan.pwm_ratio)
        return True

    def _add_nvme(self, families: dict[str, GaugeMetricFamily]) -> bool:
        drives = pi_sysfs.read_nvme(self.root)
        for drive in drives:
            families["claw_nvme_info"].add_metric([drive.device, drive.model, drive.firmware], 1.0)
            for sensor, celsius in drive.temperatures.items():
                families["claw_nvme_temperature_celsius"].add_metric([drive.device, sensor], celsius)
        return bool(drives)

    def _add_pull(self, families: dict[str, GaugeMetricFamily]) -> bool:
        if self.settings.pull_result_file is None:
            return False
        result, error = pull.read_result(self.settings.pull_result_file)
        self._log_change("pull", error)
        if result is None:
            return False
        pull.add_metrics(families, "claw", result)
        return True

    # --- parallel sources: each returns a Reading and never raises --------------------------------------------

    def _guard(self, read: Callable[[], Reading]) -> Reading:
        try:
            return read()
        except Exception as exc:  # a bug in one source must cost that source, not the scrape
            log.exception("reading a source failed")
            return Reading(error=_describe(exc))

    def _http_client(self) -> httpx.Client:
        return httpx.Client(timeout=self.settings.timeout_seconds, trust_env=False, verify=client_context())

    def probe_gateway(self) -> Reading:
        """``GET {gateway}/healthz``: up when it answers 200 and, if the body is a JSON object, ``ok`` is true."""
        url = f"{self.settings.gateway_url}/healthz"
        started = time.perf_counter()
        try:
            with self._http_client() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            return Reading(value=False, error=f"GET {url}: {_describe(exc)}", seconds=time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Reading(value=False, error=f"GET {url}: HTTP {response.status_code}", seconds=seconds)
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "ok" in body and body["ok"] is not True:
            return Reading(value=False, error=f"GET {url}: not ok: {json.dumps(body)[:200]}", seconds=seconds)
        return Reading(value=True, seconds=seconds)

    def read_leds(self) -> Reading:
        """The level of the winning LED layer (``none`` when the strip is dark)."""
        assert self.settings.leds_socket is not None
        client = LedClient(self.settings.leds_socket, timeout=self.settings.timeout_seconds)
        try:
            answer = client.request_sync("get")
        except (LedDaemonUnavailable, LedRequestError) as exc:
            return Reading(error=str(exc))
        winner = answer.get("winner")
        level = winner.get("level") if isinstance(winner, dict) else None
        return Reading(value=level if level in LED_LEVELS else "none")

    def read_units(self) -> Reading:
        """ActiveState of each configured unit, from one ``systemctl show`` (values come in argument order)."""
        units = list(self.settings.units)
        argv = ["systemctl", "show", "-p", "ActiveState", "--value", *units]
        try:
            output = self.runner(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None)
            reason = detail.strip().splitlines()[0] if isinstance(detail, str) and detail.strip() else _describe(exc)
            return Reading(error=f"systemctl show: {reason}")
        states = [line.strip() for line in output.splitlines() if line.strip()]
        if len(states) != len(units):
            return Reading(error=f"systemctl show: {len(states)} states for {len(units)} units: {output[:200]!r}")
        return Reading(value=dict(zip(units, states, strict=True)))

    def read_crush_power(self) -> Reading:
        """``crush_power_rail_watts{rail="VDD_IN"}`` from the crush exporter (the Jetson module's input power)."""
        url = self.settings.crush_metrics_url
        assert url is not None
        try:
            with self._http_client() as client:
                response = client.get(url)
                response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            return Reading(error=f"GET {url}: HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return Reading(error=f"GET {url}: {_describe(exc)}")
        try:
            for family in text_string_to_metric_families(response.text):
                if family.name != CRUSH_POWER_METRIC:
                    continue
                for sample in family.samples:
                    if sample.labels.get("rail") == CRUSH_POWER_RAIL and math.isfinite(sample.value):
                        return Reading(value=float(sample.value))
        except ValueError as exc:
            return Reading(error=f"GET {url}: not a Prometheus exposition: {_describe(exc)}")
        return Reading(error=f'GET {url}: no {CRUSH_POWER_METRIC}{{rail="{CRUSH_POWER_RAIL}"}}')

    # --- parallel results into families ------------------------------------------------------------------------

    def _add_openclaw(self, families: dict[str, GaugeMetricFamily], reading: Reading | None) -> bool:
        if reading is None:
            return False
        families["claw_openclaw_up"].add_metric([], 1.0 if reading.value else 0.0)
        if reading.seconds is not None:
            families["claw_openclaw_probe_seconds"].add_metric([], reading.seconds)
        return bool(reading.value)

    def _add_leds(self, families: dict[str, GaugeMetricFamily], reading: Reading | None) -> bool:
        if reading is None:
            return False
        up = reading.error is None
        families["claw_leds_daemon_up"].add_metric([], 1.0 if up else 0.0)
        if up:
            for level in LED_LEVELS:
                families["claw_leds_level"].add_metric([level], 1.0 if level == reading.value else 0.0)
        return up

    def _add_units(self, families: dict[str, GaugeMetricFamily], reading: Reading | None) -> bool:
        if reading is None or reading.error is not None:
            return False
        for unit, state in reading.value.items():
            families["claw_unit_active"].add_metric([unit], 1.0 if state in ACTIVE_STATES else 0.0)
        return True

    def _add_power(
        self, families: dict[str, GaugeMetricFamily], claw_watts: float | None, crush_watts: float | None
    ) -> None:
        s = self.settings
        nodes = (
            ("claw", claw_watts, str(s.claw_power_file), s.claw_idle_watts),
            ("crush", crush_watts, s.crush_metrics_url or "", s.crush_idle_watts),
        )
        total = None
        for node, measured, origin, configured in nodes:
            if measured is not None:
                watts, source = measured, "measured"
            elif configured is not None:
                watts, source, origin = configured, "configured", "config"
            else:
                continue
            families["claw_power_watts"].add_metric([node, source], watts)
            families["claw_power_source_info"].add_metric([node, source, origin], 1.0)
            total = (total or 0.0) + watts
        families["claw_energy_price_per_kwh"].add_metric([s.currency], s.price_per_kwh)
        if total is not None:
            families["claw_electricity_cost_per_month"].add_metric([s.currency], monthly_cost(total, s.price_per_kwh))

    def _log_change(self, source: str, error: str | None) -> None:
        """Log a source's problem when it starts or changes, and the recovery, not on every scrape."""
        with self._errors_lock:
            previous = self._last_error.get(source)
            self._last_error[source] = error
        if error == previous:
            return
        if error:
            log.warning("%s: %s", source, error)
        elif previous:
            log.info("%s answers again", source)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw-exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="YAML file of settings (the flags override it)")
    parser.add_argument("--listen", help="HOST:PORT to serve /metrics on (required here or as listen in --config)")
    parser.add_argument("--sysfs-root", type=Path, help="directory standing for / (default /)")
    parser.add_argument("--gateway-url", help="OpenClaw gateway base URL (default: none, no openclaw source)")
    parser.add_argument("--leds-socket", type=Path, help=f"LED daemon socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--crush-metrics-url", help="the crush exporter's metrics URL, e.g. http://crush:PORT/metrics")
    parser.add_argument("--claw-power-file", type=Path, help="file holding claw's power draw in watts")
    parser.add_argument("--pull-result-file", type=Path, help=f"the node's pull result ({pull.DEFAULT_RESULT_FILE})")
    parser.add_argument(
        "--unit", dest="units", action="append", help="systemd unit to report (repeat; replaces the file's list)"
    )
    parser.add_argument("--timeout", dest="timeout_seconds", type=float, help="seconds per request (default 0.5)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--check", action="store_true", help="validate the settings (exit 0, or 2 with the reason) and start nothing"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    config = args.pop("config")
    check = args.pop("check")
    try:
        settings = load_settings(config, args)
    except (OSError, ValueError, yaml.YAMLError) as err:  # a pydantic ValidationError is a ValueError
        print(f"claw-exporter: {err}", file=sys.stderr)
        return 2
    if settings.listen is None:
        print("claw-exporter: listen: required; give --listen HOST:PORT or set listen in --config", file=sys.stderr)
        return 2
    if check:
        print(f"claw-exporter: {config or 'the flags'}: the settings are valid")
        return 0
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    collector = ClawCollector(settings)
    registry = CollectorRegistry()
    registry.register(collector)
    host, port = parse_listen(settings.listen)
    serve_until_stopped(registry, host, port, f"sysfs root {settings.sysfs_root}")
    collector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
