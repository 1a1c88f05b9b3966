"""Read a Jetson's GPU, power, thermal, memory and power-mode state straight from sysfs, procfs and /etc.

Every reader takes ``root``, the directory that stands for ``/`` (tests point it at a fixture tree), and returns
``None`` or an empty collection when its source is missing or unreadable, never a made-up zero. Units are
converted to base units here: ratio 0..1, hertz, volts, amperes, watts, degrees Celsius, bytes.

Layouts read (Jetson Orin Nano, JetPack 5/6):

* GPU load, per-mille 0..1000: ``/sys/devices/platform/bus@0/17000000.gpu/load`` (JetPack 6), older
  ``/sys/devices/platform/17000000.ga10b/load`` and ``/sys/devices/gpu.0/load``, or the ``device/load`` of a GPU
  devfreq entry.
* GPU clock in Hz: ``/sys/class/devfreq/<name>/cur_freq`` where the name contains ``gpu`` or ``.ga10b``.
* Power: the INA3221 hwmon ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in{N}_label``, ``in{N}_input`` (mV),
  ``curr{N}_input`` (mA); the labels "NC" and "sum of shunt voltages" are not rails.
* Temperatures: ``/sys/class/thermal/thermal_zone*/{type,temp}`` in millidegrees; -256 degC means the sensor
  is offline (the cv*-thermal zones on an Orin Nano), as jetson-stats treats it.
* Memory: ``/proc/meminfo`` ``MemTotal`` and ``MemAvailable`` in kB.
* Power mode: ``/var/lib/nvpmodel/status`` (``pmode:0002 ...``) named through ``/etc/nvpmodel.conf``
  (``< POWER_MODEL ID=2 NAME=MAXN_SUPER >``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GPU_LOAD_FILES = (
    "sys/devices/platform/bus@0/17000000.gpu/load",
    "sys/devices/platform/17000000.gpu/load",
    "sys/devices/platform/17000000.ga10b/load",
    "sys/devices/gpu.0/load",
)
DEVFREQ_DIR = "sys/class/devfreq"
INA3221_HWMON_GLOB = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
THERMAL_DIR = "sys/class/thermal"
MEMINFO_FILE = "proc/meminfo"
NVPMODEL_STATUS_FILE = "var/lib/nvpmodel/status"
NVPMODEL_CONF_FILE = "etc/nvpmodel.conf"

NOT_A_RAIL = frozenset({"nc", "sum of shunt voltages"})
TEMPERATURE_OFFLINE_MILLI = -256_000
TRIP_TYPES = frozenset({"passive", "hot"})

_PMODE_RE = re.compile(r"pmode:\s*(\d+)")
_POWER_MODEL_RE = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)\s*>")
_MEMINFO_RE = re.compile(r"^(\w+):\s+(\d+)\s*kB", re.MULTILINE)
_NUMBERED_RE = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class PowerRail:
    """One INA3221 channel: bus voltage, current and their product."""

    name: str
    volts: float
    amperes: float

    @property
    def watts(self) -> float:
        return self.volts * self.amperes


@dataclass(frozen=True)
class MemoryInfo:
    """Total and available RAM in bytes (Orin's RAM is shared by CPU and GPU)."""

    total_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class PowerMode:
    """The nvpmodel mode in force: its ID and, when the conf names it, its name."""

    id: int
    name: str | None


def read_text(path: Path) -> str | None:
    """The stripped contents of a file, or None when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def read_int(path: Path) -> int | None:
    """A file holding one integer, or None when it is missing, unreadable or not an integer."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _by_number(path: Path) -> tuple[int, str]:
    """Sort key putting thermal_zone2 before thermal_zone10."""
    match = _NUMBERED_RE.search(path.name)
    return (int(match.group(1)) if match else -1, path.name)


def gpu_devfreq_dirs(root: Path) -> list[Path]:
    """The devfreq entries of the integrated GPU (``17000000.gpu`` on JetPack 6, ``17000000.ga10b`` on 5)."""
    base = root / DEVFREQ_DIR
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    return [entry for entry in entries if "gpu" in entry.name or ".ga10b" in entry.name]


def read_gpu_load(root: Path) -> float | None:
    """GPU load as a ratio 0..1 from the per-mille ``load`` file."""
    candidates = [root / rel for rel in GPU_LOAD_FILES]
    candidates += [entry / "device" / "load" for entry in gpu_devfreq_dirs(root)]
    for path in candidates:
        value = read_int(path)
        if value is not None:
            return min(max(value, 0), 1000) / 1000.0
    return None


def read_gpu_frequency(root: Path) -> float | None:
    """Current GPU clock in hertz from the GPU devfreq ``cur_freq``."""
    for entry in gpu_devfreq_dirs(root):
        value = read_int(entry / "cur_freq")
        if value is not None:
            return float(value)
    return None


def _hwmon_in_channels(hwmon: Path) -> list[int]:
    """The channel numbers N of the ``in{N}_label`` files in a hwmon directory."""
    channels = []
    for label_file in hwmon.glob("in*_label"):
        digits = label_file.name[len("in") : -len("_label")]
        if digits.isdigit():
            channels.append(int(digits))
    return channels


def read_power_rails(root: Path) -> list[PowerRail]:
    """Every labelled INA3221 rail with its voltage and current; empty when there is no INA3221."""
    rails: list[PowerRail] = []
    seen: set[str] = set()
    for hwmon in sorted(root.glob(INA3221_HWMON_GLOB)):
        for channel in sorted(_hwmon_in_channels(hwmon)):
            label = read_text(hwmon / f"in{channel}_label")
            if not label or label.lower() in NOT_A_RAIL or label in seen:
                continue
            millivolts = read_int(hwmon / f"in{channel}_input")
            milliamperes = read_int(hwmon / f"curr{channel}_input")
            if millivolts is None or milliamperes is None:
                continue
            seen.add(label)
            rails.append(PowerRail(name=label, volts=millivolts / 1000.0, amperes=milliamperes / 1000.0))
    return rails


def thermal_zones(root: Path) -> Iterator[tuple[str, Path]]:
    """(label, zone directory) for each thermal zone with a type; a repeated type gets the zone number appended."""
    base = root / THERMAL_DIR
    seen: set[str] = set()
    for zone in sorted(base.glob("thermal_zone*"), key=_by_number):
        zone_type = read_text(zone / "type")
        if not zone_type:
            continue
        label = zone_type if zone_type not in seen else f"{zone_type}-{_by_number(zone)[0]}"
        seen.add(label)
        yield label, zone


def _zone_millidegrees(zone: Path) -> int | None:
    value = read_int(zone / "temp")
    if value is None or value <= TEMPERATURE_OFFLINE_MILLI:
        return None
    return value


def read_temperatures(root: Path) -> dict[str, float]:
    """Degrees Celsius per thermal zone, keyed by zone type; offline or unreadable zones are left out."""
    temperatures: dict[str, float] = {}
    for label, zone in thermal_zones(root):
        value = _zone_millidegrees(zone)
        if value is not None:
            temperatures[label] = value / 1000.0
    return temperatures


def lowest_trip_millidegrees(zone: Path) -> int | None:
    """The lowest passive or hot trip point of a zone in millidegrees, or None when it has none."""
    temps: list[int] = []
    for type_file in zone.glob("trip_point_*_type"):
        if (read_text(type_file) or "").lower() not in TRIP_TYPES:
            continue
        value = read_int(type_file.with_name(type_file.name.replace("_type", "_temp")))
        if value is not None:
            temps.append(value)
    return min(temps) if temps else None


def read_trip_exceeded(root: Path) -> dict[str, bool]:
    """Per zone with a passive/hot trip point: whether its temperature has reached the lowest such trip."""
    exceeded: dict[str, bool] = {}
    for label, zone in thermal_zones(root):
        value = _zone_millidegrees(zone)
        trip = lowest_trip_millidegrees(zone)
        if value is not None and trip is not None:
            exceeded[label] = value >= trip
    return exceeded


def read_memory(root: Path) -> MemoryInfo | None:
    """MemTotal and MemAvailable from ``/proc/meminfo``, in bytes."""
    text = read_text(root / MEMINFO_FILE)
    if text is None:
        return None
    fields = {name: int(kib) * 1024 for name, kib in _MEMINFO_RE.findall(text)}
    if "MemTotal" not in fields or "MemAvailable" not in fields:
        return None
    return MemoryInfo(total_bytes=fields["MemTotal"], available_bytes=fields["MemAvailable"])


def read_power_mode(root: Path) -> PowerMode | None:
    """The nvpmodel mode from its status file, named from ``/etc/nvpmodel.conf`` when that is readable."""
    status = read_text(root / NVPMODEL_STATUS_FILE)
    match = _PMODE_RE.search(status or "")
    if match is None:
        return None
    mode_id = int(match.group(1))
    names = {
        int(found_id): name for found_id, name in _POWER_MODEL_RE.findall(read_text(root / NVPMODEL_CONF_FILE) or "")
    }
    return PowerMode(id=mode_id, name=names.get(mode_id))
