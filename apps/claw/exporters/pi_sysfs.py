"""Read a Raspberry Pi 5's throttling flags, fan, NVMe drive and an optional power reading from sysfs.

Like :mod:`claw.exporters.jetson_sysfs` (whose generic readers this module reuses), every reader takes ``root``,
the directory that stands for ``/``, and returns ``None`` or an empty collection when its source is missing or
unreadable, never a made-up zero. Units are converted to base units: ratio 0..1, degrees Celsius, watts.

Layouts read (Raspberry Pi 5, Raspberry Pi OS Bookworm, 6.6+ kernel):

* Temperatures: ``/sys/class/thermal/thermal_zone*/{type,temp}`` (the Pi 5 has one zone, ``cpu-thermal``),
  read by :func:`claw.exporters.jetson_sysfs.read_temperatures`.
* Throttling: the firmware driver's ``get_throttled``, the ``vcgencmd get_throttled`` bit mask in hex without a
  prefix (``50005``): ``/sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled`` on a Pi 5,
  ``/sys/devices/platform/soc/soc:firmware/get_throttled`` on a Pi 4. Bits 0-3 are "now", 16-19 "since boot"
  (the table and the parsing are :mod:`claw.board.pi`'s).
* Fan: the ``pwm-fan`` driver's hwmon (``name`` is ``pwmfan``; ``/sys/devices/platform/cooling_fan/hwmon/hwmonN``,
  linked from ``/sys/class/hwmon``): ``fan1_input`` in RPM and ``pwm1`` 0..255.
* NVMe: ``/sys/class/nvme/nvme*/{model,firmware_rev}`` (space padded) and the drive's hwmon, a child of the
  controller (``nvme0/hwmonN``; ``nvme0/device/hwmon/hwmonN`` on older kernels) with ``temp*_input`` in
  millidegrees and ``temp*_label`` (``Composite``, ``Sensor 1``). SMART's "percentage used" and the other health
  counters need the admin ioctl (root), so they are not read here.
* Power: the Pi 5's PMIC ADC is only reachable through ``vcgencmd pmic_read_adc`` (the firmware mailbox), not
  sysfs; a power file, written by a root timer or an external meter, is read when one is configured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from claw.board import pi
from claw.exporters.jetson_sysfs import read_int, read_text

THROTTLED_FILES = tuple(f"sys/{relative}" for relative in pi.THROTTLED_FILES)
HWMON_DIR = "sys/class/hwmon"
NVME_DIR = "sys/class/nvme"
FAN_HWMON_NAMES = frozenset({"pwmfan", "cooling_fan"})
PWM_MAX = 255

# claw_throttled's flag label -> bit (claw.board.pi's table); the "_occurred" flags are sticky until reboot.
THROTTLE_FLAGS = pi.throttle_bits(lambda condition: condition.label)


@dataclass(frozen=True)
class FanReading:
    """The fan's speed and PWM duty; either may be missing (a fan without a tach wire has no ``fan1_input``)."""

    rpm: float | None
    pwm_ratio: float | None


@dataclass(frozen=True)
class NvmeDrive:
    """One NVMe controller: its identity and the temperatures its hwmon reports, keyed by sensor label."""

    device: str
    model: str
    firmware: str
    temperatures: dict[str, float] = field(default_factory=dict)


def under_root(root: Path, path: Path | str) -> Path:
    """``path`` as seen from ``root`` (an absolute path is re-rooted, a relative one is taken as relative to it)."""
    path = Path(path)
    return root / path.relative_to(path.anchor) if path.is_absolute() else root / path


def decode_throttled(value: int) -> dict[str, bool]:
    """The named flags of a ``get_throttled`` bit mask."""
    return pi.decode_throttled(value, THROTTLE_FLAGS)


def read_throttled(root: Path, path: Path | str | None = None) -> int | None:
    """The ``get_throttled`` bit mask from ``path`` (under ``root``) or the first known firmware location."""
    candidates = [under_root(root, path)] if path is not None else [root / rel for rel in THROTTLED_FILES]
    for candidate in candidates:
        word = pi.parse_throttled(read_text(candidate) or "")
        if word is not None:
            return word
    return None


def _hwmon_by_name(root: Path, names: frozenset[str]) -> list[Path]:
    base = root / HWMON_DIR
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    return [entry for entry in entries if (read_text(entry / "name") or "") in names]


def read_fan(root: Path) -> FanReading | None:
    """Speed (RPM) and PWM duty (0..1) of the first ``pwmfan`` hwmon, or None without one."""
    for hwmon in _hwmon_by_name(root, FAN_HWMON_NAMES):
        rpm = read_int(hwmon / "fan1_input")
        pwm = read_int(hwmon / "pwm1")
        if rpm is None and pwm is None:
            continue
        return FanReading(
            rpm=float(rpm) if rpm is not None else None,
            pwm_ratio=min(max(pwm, 0), PWM_MAX) / PWM_MAX if pwm is not None else None,
        )
    return None


def _nvme_hwmon(controller: Path) -> Path | None:
    for pattern in ("hwmon*", "device/hwmon/hwmon*"):
        for hwmon in sorted(controller.glob(pattern)):
            if (hwmon / "temp1_input").exists():
                return hwmon
    return None


def _hwmon_temperatures(hwmon: Path) -> dict[str, float]:
    temperatures: dict[str, float] = {}
    for input_file in sorted(hwmon.glob("temp*_input")):
        channel = input_file.name[: -len("_input")]
        value = read_int(input_file)
        if value is None:
            continue
        label = read_text(hwmon / f"{channel}_label") or channel
        temperatures.setdefault(label, value / 1000.0)
    return temperatures


def read_nvme(root: Path) -> list[NvmeDrive]:
    """Every NVMe controller under ``/sys/class/nvme`` with its model, firmware and hwmon temperatures."""
    base = root / NVME_DIR
    try:
        controllers = sorted(entry for entry in base.iterdir() if entry.name.startswith("nvme"))
    except OSError:
        return []
    drives = []
    for controller in controllers:
        model = read_text(controller / "model")
        if model is None:
            continue
        hwmon = _nvme_hwmon(controller)
        drives.append(
            NvmeDrive(
                device=controller.name,
                model=model,
                firmware=read_text(controller / "firmware_rev") or "",
                temperatures=_hwmon_temperatures(hwmon) if hwmon is not None else {},
            )
        )
    return drives


def read_power_file(root: Path, path: Path | str, scale: float = 1.0) -> float | None:
    """Watts from a file holding one number times ``scale`` (1 for watts, 1e-6 for a hwmon ``power1_input``)."""
    text = read_text(under_root(root, path))
    if not text:
        return None
    try:
        watts = float(text.split()[0]) * scale
    except ValueError:
        return None
    return watts if math.isfinite(watts) and watts >= 0 else None
