"""The status watcher: polls the appliance and turns what it finds into LED daemon signals.

Each poll has an impure half, :class:`Probes` (systemctl, HTTP, sysfs; tests inject a command runner and an
httpx transport), and a pure half, :func:`evaluate`, which maps observations to the signal each source should
carry: a :class:`Signal`, ``None`` to unsignal, or no entry when the input is unknown this time (then the last
signal simply runs out its TTL, three polls by default). What each state looks like lives in one table,
:data:`claw.leds.state.SIGNAL_STATES`.

Run: ``claw leds watch --unit openclaw.service --crush-url http://crush:8080/health
--throttled-file /sys/devices/platform/soc/soc:firmware/get_throttled --prometheus-url http://127.0.0.1:9090``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from claw.board.pi import THROTTLE_CONDITIONS, find_throttled_file, parse_throttled
from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.leds.protocol import DEFAULT_SOCKET, describe_errors

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("claw.leds.watcher")

UP_STATES = frozenset({"active", "reloading"})
SYS_DIR = Path("/sys")
# The "now" bits of the Pi firmware's get_throttled (the sticky "since boot" ones do not light the LED).
THROTTLE_NOW = {condition.bit: condition.text for condition in THROTTLE_CONDITIONS}
MAX_NAMES_SHOWN = 4

Runner = Callable[[Sequence[str], float], Awaitable[tuple[int, str]]]
# A systemd unit name as systemctl takes it (no spaces, no leading '-').
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$", max_length=256)]


class WatcherSettings(BaseModel):
    """What to watch; every source is optional (a YAML file with these keys, CLI flags on top)."""

    model_config = ConfigDict(extra="forbid")

    socket: Path = DEFAULT_SOCKET
    interval: float = Field(5.0, ge=0.5, le=3600, description="seconds between polls")
    ttl: float | None = Field(None, gt=0, description="signal lifetime; default three intervals")
    timeout: float = Field(3.0, gt=0, le=60, description="per probe, seconds")
    units: list[UnitName] = Field(default_factory=list, description="systemd units that must be active")
    crush_url: str | None = Field(None, description="GET must answer 2xx/3xx, e.g. http://crush:8080/health")
    throttled_file: Path | None = Field(
        None, description="hex flags like the firmware's get_throttled; 'auto' = the Pi firmware's file if any"
    )
    thermal_file: Path | None = Field(None, description="millidegrees Celsius, e.g. thermal_zone0/temp")
    thermal_max_c: float = Field(80.0, gt=0, le=150)
    prometheus_url: str | None = Field(None, description="base URL; firing alerts from /api/v1/alerts")
    inference_url: str | None = Field(None, description="Prometheus text metrics of the inference engine")
    inference_metric: str = Field("llamacpp:requests_processing", description="> 0 means generating")

    @field_validator("crush_url", "prometheus_url", "inference_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("throttled_file", mode="before")
    @classmethod
    def _find_throttled_file(cls, value: object) -> object:
        # A Pi 4 and a Pi 5 expose the firmware's word at different sysfs nodes; elsewhere there is none.
        return find_throttled_file(SYS_DIR) if str(value) == "auto" else value

    @property
    def signal_ttl(self) -> float:
        return self.ttl if self.ttl is not None else 3 * self.interval


@dataclass(frozen=True)
class Observations:
    """Raw inputs of one poll; ``None`` means not watched or not known this time."""

    unit_states: Mapping[str, str] | None = None
    crush_error: str | None = None  # "" when crush answered
    throttled_flags: int | None = None
    temperature_c: float | None = None
    alerts: Sequence[Mapping[str, Any]] | None = None  # Prometheus /api/v1/alerts data.alerts
    inference_value: float | None = None


@dataclass(frozen=True)
class Signal:
    state: str
    detail: str = ""


def evaluate(settings: WatcherSettings, seen: Observations) -> dict[str, Signal | None]:
    """Observations to the signal per source (``None``: unsignal). Sources with unknown input are left out."""
    desired: dict[str, Signal | None] = {}
    if settings.units and seen.unit_states is not None:
        down = [
            f"{unit} {state}"
            for unit in settings.units
            if (state := seen.unit_states.get(unit, "unknown")) not in UP_STATES
        ]
        desired["systemd"] = Signal("service_down", _names(down)) if down else None
    if settings.crush_url and seen.crush_error is not None:
        desired["crush"] = Signal("crush_unreachable", seen.crush_error) if seen.crush_error else None
    if settings.throttled_file or settings.thermal_file:
        reasons = [name for bit, name in THROTTLE_NOW.items() if (seen.throttled_flags or 0) >> bit & 1]
        if seen.temperature_c is not None and seen.temperature_c >= settings.thermal_max_c:
            reasons.append(f"{seen.temperature_c:.1f} °C (limit {settings.thermal_max_c:g} °C)")
        if reasons or seen.throttled_flags is not None or seen.temperature_c is not None:
            desired["thermal"] = Signal("throttled", ", ".join(reasons)) if reasons else None
    if settings.prometheus_url and seen.alerts is not None:
        firing = sorted(
            {str(a.get("labels", {}).get("alertname", "?")) for a in seen.alerts if a.get("state") == "firing"}
        )
        desired["prometheus"] = Signal("alert_firing", _names(firing)) if firing else None
    if settings.inference_url and seen.inference_value is not None:
        desired["inference"] = Signal("inference") if seen.inference_value > 0 else None
    return desired


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown if len(names) <= MAX_NAMES_SHOWN else f"{shown} and {len(names) - MAX_NAMES_SHOWN} more"


def metric_value(text: str, name: str) -> float | None:
    """Sum of one metric's samples in Prometheus text format, or None when absent."""
    values = [
        float(line.rsplit(maxsplit=1)[-1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}
    ]
    return sum(values) if values else None


async def run_command(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(errors="replace")


class Probes:
    """The impure half of a poll. Each probe failure is logged and becomes "unknown", never an exception."""

    def __init__(
        self, settings: WatcherSettings, runner: Runner = run_command, http: httpx.AsyncClient | None = None
    ) -> None:
        import httpx

        self.settings = settings
        self._runner = runner
        self._http = http or httpx.AsyncClient(timeout=settings.timeout)
        self._http_errors: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, ValueError)

    async def observe(self) -> Observations:
        s = self.settings
        units, crush, alerts, inference = await asyncio.gather(
            self._units() if s.units else _none(),
            self._crush() if s.crush_url else _none(),
            self._alerts() if s.prometheus_url else _none(),
            self._inference() if s.inference_url else _none(),
        )
        return Observations(
            unit_states=units,
            crush_error=crush,
            throttled_flags=self._read(s.throttled_file, parse_throttled),
            temperature_c=self._read(s.thermal_file, lambda text: int(text.strip()) / 1000),
            alerts=alerts,
            inference_value=inference,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _units(self) -> dict[str, str] | None:
        units = self.settings.units
        try:
            _, out = await self._runner(["systemctl", "is-active", "--", *units], self.settings.timeout)
        except (OSError, asyncio.TimeoutError) as err:
            log.warning("systemctl is-active failed: %s", err)
            return None
        states = out.split()
        if len(states) != len(units):
            log.warning("systemctl is-active answered %d states for %d units", len(states), len(units))
            return None
        return dict(zip(units, states, strict=True))

    async def _crush(self) -> str:
        try:
            response = await self._http.get(str(self.settings.crush_url))
        except self._http_errors as err:
            return f"{type(err).__name__}: {err}".rstrip(": ")
        return f"HTTP {response.status_code}" if response.status_code >= 400 else ""

    async def _alerts(self) -> list[Mapping[str, Any]] | None:
        url = f"{str(self.settings.prometheus_url).rstrip('/')}/api/v1/alerts"
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            alerts = response.json()["data"]["alerts"]
        except (*self._http_errors, KeyError, TypeError) as err:
            log.warning("cannot read alerts from %s: %s", url, err)
            return None
        return [a for a in alerts if isinstance(a, dict)] if isinstance(alerts, list) else None

    async def _inference(self) -> float | None:
        try:
            response = await self._http.get(str(self.settings.inference_url))
            response.raise_for_status()
        except self._http_errors as err:
            log.debug("inference metrics unavailable: %s", err)
            return None
        return metric_value(response.text, self.settings.inference_metric)

    @staticmethod
    def _read(path: Path | None, parse: Callable[[str], Any]) -> Any:
        if path is None:
            return None
        try:
            return parse(path.read_text(encoding="ascii"))
        except (OSError, ValueError) as err:
            log.warning("cannot read %s: %s", path, err)
            return None


async def _none() -> None:
    return None


async def poll_once(settings: WatcherSettings, probes: Probes, client: LedClient) -> dict[str, Signal | None]:
    """Observe, evaluate, and send the result; a missing daemon is logged, not fatal (it may be restarting)."""
    desired = evaluate(settings, await probes.observe())
    try:
        for source, wanted in desired.items():
            if wanted is None:
                await client.unsignal(source)
            else:
                await client.signal(source, wanted.state, ttl=settings.signal_ttl, detail=wanted.detail)
    except LedDaemonUnavailable as err:
        log.warning("%s", err)
    except LedRequestError as err:
        log.error("LED daemon refused a signal: %s", err)
    return desired


async def watch(settings: WatcherSettings, probes: Probes, client: LedClient, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await poll_once(settings, probes, client)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.interval)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with WatcherSettings keys; flags override it")
    parser.add_argument("--socket", type=Path, help=f"LED daemon socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--interval", type=float, help="seconds between polls (default 5)")
    parser.add_argument("--ttl", type=float, help="signal lifetime in seconds (default three intervals)")
    parser.add_argument("--unit", dest="units", action="append", help="a systemd unit that must be active (repeat)")
    parser.add_argument("--crush-url", help="crush health URL, e.g. http://crush:8080/health")
    parser.add_argument("--throttled-file", type=Path, help="get_throttled flags file")
    parser.add_argument("--thermal-file", type=Path, help="thermal zone temp file (millidegrees)")
    parser.add_argument("--thermal-max-c", type=float, help="temperature alert threshold (default 80)")
    parser.add_argument("--prometheus-url", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--inference-url", help="inference engine metrics URL, e.g. http://crush:8080/metrics")
    parser.add_argument("--inference-metric", help="metric that is > 0 while generating")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--check", action="store_true", help="validate the settings (exit 0, or 2 with the reason) and watch nothing"
    )


def settings_from_args(args: argparse.Namespace) -> WatcherSettings:
    """The YAML file's keys, then every flag that was given; raises ValueError with a one-line reason."""
    raw: dict[str, Any] = {}
    if args.config is not None:
        try:
            raw = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"cannot read {args.config}: {err}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{args.config}: expected a mapping of settings")
    raw.update(
        {key: value for key, value in vars(args).items() if key in WatcherSettings.model_fields and value is not None}
    )
    try:
        return WatcherSettings.model_validate(raw)
    except ValidationError as err:
        raise ValueError(describe_errors(err)) from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_args(args)
    except ValueError as err:
        print(f"claw leds watch: {err}", file=sys.stderr)
        return 2
    if args.check:
        print(f"claw leds watch: {args.config or 'the flags'}: the settings are valid")
        return 0
    asyncio.run(_watch_until_signalled(settings))
    return 0


async def _watch_until_signalled(settings: WatcherSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    probes = Probes(settings)
    try:
        await watch(settings, probes, LedClient(settings.socket, timeout=settings.timeout), stop)
    finally:
        await probes.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claw.leds.watcher", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
