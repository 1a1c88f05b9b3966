"""Pure readers of /proc and /sys for the `system` MCP server.

Every path is joined under an injectable root, so tests read a fake Raspberry Pi 5 tree and nothing here needs
privileges, a subprocess or the network. A source that does not exist yields ``None`` (or an empty list) so the
caller can say "not available on this host" instead of inventing a zero.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

# /proc/cpuinfo on arm64 names no model; "CPU implementer"/"CPU part" do (0x41 = Arm Ltd).
_ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76"}


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_int(path: Path) -> int | None:
    text = read_text(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _numbered(paths: list[Path], prefix: str) -> list[Path]:
    """Sort cpu2 < cpu10 and thermal_zone2 < thermal_zone10."""
    return sorted(paths, key=lambda p: int(p.name[len(prefix) :]) if p.name[len(prefix) :].isdigit() else -1)


# --- CPU --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuIdentity:
    board: str | None
    core_type: str | None
    cores: int


def parse_cpuinfo(text: str) -> CpuIdentity:
    fields: dict[str, str] = {}
    cores = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            cores += 1
        fields.setdefault(key, value)
    core_type = fields.get("model name")
    if core_type is None and fields.get("CPU implementer") == "0x41":
        part = fields.get("CPU part", "")
        core_type = f"Arm {_ARM_PARTS.get(part, 'core ' + part)}"
    return CpuIdentity(board=fields.get("Model"), core_type=core_type, cores=cores)


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


def parse_stat(text: str) -> dict[str, CpuTimes]:
    """The ``cpu`` and ``cpuN`` lines of /proc/stat as busy/total jiffies (iowait counts as idle)."""
    result: dict[str, CpuTimes] = {}
    for line in text.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or len(values) < 4:
            continue
        # user nice system idle iowait irq softirq steal; guest time is already inside user.
        numbers = [int(v) for v in values[:8]]
        idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
        result[name] = CpuTimes(busy=sum(numbers) - idle, total=sum(numbers))
    return result


def usage_percent(before: CpuTimes, after: CpuTimes) -> float | None:
    elapsed = after.total - before.total
    if elapsed <= 0:
        return None  # no tick between the samples: unknown, not 0 %
    return round(100.0 * max(0, after.busy - before.busy) / elapsed, 1)


# --- memory -----------------------------------------------------------------------------------------------------


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes (the kernel writes kB = KiB)."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and parts[0].isdigit():
            result[key.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return result


@dataclass(frozen=True)
class SwapDevice:
    name: str
    kind: str
    size_bytes: int
    used_bytes: int
    priority: int


def parse_swaps(text: str) -> list[SwapDevice]:
    devices = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 5:
            name, kind, size, used, priority = parts
            devices.append(SwapDevice(name, kind, int(size) * 1024, int(used) * 1024, int(priority)))
    return devices


@dataclass(frozen=True)
class Zram:
    name: str
    disksize_bytes: int
    original_bytes: int | None
    compressed_bytes: int | None
    memory_used_bytes: int | None
    algorithm: str | None


def read_zram(block: Path) -> list[Zram]:
    devices = []
    for device in _numbered(list(block.glob("zram*")), "zram"):
        size = read_int(device / "disksize")
        if not size:
            continue  # an unconfigured zram device holds nothing
        stat = (read_text(device / "mm_stat") or "").split()
        numbers = [int(v) for v in stat[:3]] if len(stat) >= 3 else [None, None, None]
        algorithms = read_text(device / "comp_algorithm") or ""
        chosen = re.search(r"\[([^\]]+)\]", algorithms)
        devices.append(Zram(device.name, size, *numbers, algorithm=chosen.group(1) if chosen else None))
    return devices


# --- temperature (the throttling word is claw.board.pi's) -------------------------------------------------------


@dataclass(frozen=True)
class ThermalZone:
    zone: str
    kind: str
    temp_c: float


def read_thermal_zones(thermal: Path) -> list[ThermalZone]:
    zones = []
    for zone in _numbered(list(thermal.glob("thermal_zone*")), "thermal_zone"):
        millidegrees = read_int(zone / "temp")
        if millidegrees is None:
            continue  # some zones refuse reads while their sensor sleeps
        kind = (read_text(zone / "type") or "unknown").strip()
        zones.append(ThermalZone(zone.name, kind, round(millidegrees / 1000, 2)))
    return zones


def hwmon_by_name(hwmon: Path, name: str) -> Path | None:
    for device in _numbered(list(hwmon.glob("hwmon*")), "hwmon"):
        if (read_text(device / "name") or "").strip() == name:
            return device
    return None


# --- uptime, load, network --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    one: float
    five: float
    fifteen: float
    running: int
    total: int


def parse_loadavg(text: str) -> Load:
    one, five, fifteen, tasks, *_ = text.split()
    running, _, total = tasks.partition("/")
    return Load(float(one), float(five), float(fifteen), int(running), int(total))


def parse_uptime(text: str) -> float:
    return float(text.split()[0])


@dataclass(frozen=True)
class Interface:
    name: str
    state: str
    mac: str | None
    mtu: int | None
    rx_bytes: int | None
    tx_bytes: int | None


def read_interfaces(net: Path) -> list[Interface]:
    interfaces = []
    for device in sorted(net.iterdir() if net.is_dir() else [], key=lambda p: p.name):
        if device.name == "lo" or not (device / "operstate").exists():
            continue
        mac = (read_text(device / "address") or "").strip() or None
        interfaces.append(
            Interface(
                name=device.name,
                state=(read_text(device / "operstate") or "unknown").strip(),
                mac=mac,
                mtu=read_int(device / "mtu"),
                rx_bytes=read_int(device / "statistics" / "rx_bytes"),
                tx_bytes=read_int(device / "statistics" / "tx_bytes"),
            )
        )
    return interfaces


def parse_ip_addr_json(text: str) -> dict[str, list[str]]:
    """``ip -j addr`` output as interface name -> ["192.168.1.50/24", "fe80::1/64", ...]."""
    result: dict[str, list[str]] = {}
    try:
        links = json.loads(text)
    except json.JSONDecodeError:
        return result
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname")
        if not isinstance(name, str):
            continue
        addresses = [
            f"{info['local']}/{info['prefixlen']}"
            for info in link.get("addr_info", [])
            if isinstance(info, dict) and "local" in info and "prefixlen" in info
        ]
        result[name] = addresses
    return result


# --- disk -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    total_bytes: int
    used_bytes: int
    available_bytes: int


def disk_usage(mount: str) -> DiskUsage:
    """Like df: 'available' is what an unprivileged writer may still use (root's reserve excluded)."""
    st = os.statvfs(mount)
    return DiskUsage(
        total_bytes=st.f_blocks * st.f_frsize,
        used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
        available_bytes=st.f_bavail * st.f_frsize,
    )
