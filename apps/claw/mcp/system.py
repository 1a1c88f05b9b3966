"""The `system` MCP server: CPU, memory, disk, temperature/throttling, uptime, network, and allow-listed services.

The readings come from /proc and /sys (:mod:`claw.mcp.sysinfo`, under configurable roots so tests use a fake
Raspberry Pi 5 tree); service status, logs and restarts go through :class:`claw.mcp.units.Units`, which refuses any
unit outside ``allowed_units`` before a process starts. Restarting uses ``systemctl restart UNIT`` as the
unprivileged service user, permitted by a polkit rule for exactly ``restartable_units`` (no sudo, no root, no
Docker socket); reading other units' journals needs the user in the ``systemd-journal`` group.

The units come from the configuration only (``allowed_units`` and ``restartable_units`` of section ``system``,
which the mcp_servers role renders from ``appliance_services``); unset, the service tools answer for no unit.

Run it with ``claw mcp system --stdio`` or as part of ``claw mcp serve``.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from claw.board import pi
from claw.mcp import sysinfo
from claw.mcp.registry import ConfigError
from claw.mcp.runtime import READ_ONLY, tool_errors
from claw.mcp.time import format_duration
from claw.mcp.units import MAX_LOG_LINES, UNIT_NAME, Runner, UnitError, Units, UnitStatus, run_command, summarise

SERVER_NAME = "system"
MIB = 1 << 20
GIB = 1 << 30

# A restart interrupts a running service (destructive) and each call does it again (not idempotent).
RESTART = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

INSTRUCTIONS = (
    "Health of this Raspberry Pi 5 appliance: cpu, memory, disk, temperature_and_throttling, uptime_and_load and "
    "network take no arguments. service_status, service_logs and restart_service work only on the appliance's own "
    "services, named exactly like 'openclaw.service'."
)


class Settings(BaseModel):
    """The system server's settings (section ``system`` of /etc/claw/mcp.yml)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, gt=0, lt=65536, description="Loopback port over HTTP (required there); unused over stdio"
    )
    proc_root: Path = Field(Path("/"), description="Directory that holds proc/ (tests point it at a fake tree)")
    sys_root: Path = Field(Path("/"), description="Directory that holds sys/")
    throttled_path: Path | None = Field(
        None, description="File with the firmware's get_throttled word; unset = look in the known sysfs places"
    )
    vcgencmd: str | None = Field(
        "/usr/bin/vcgencmd", description="Fallback source of the throttling word (needs the video group); null = off"
    )
    ip: str | None = Field("/usr/bin/ip", description="iproute2 'ip', for interface addresses; null = no addresses")
    mounts: list[str] = Field(["/"], min_length=1, max_length=16, description="Mount points the disk tool reports")
    allowed_units: list[str] = Field(
        default_factory=list, max_length=64, description="Units whose status and logs the tools show; unset = none"
    )
    # The rendered config leaves out the unit of the process serving this server: restarting it would cut the answer
    # off.
    restartable_units: list[str] = Field(
        default_factory=list, max_length=64, description="The allowed units the model may restart; unset = none"
    )
    systemctl: str = "/usr/bin/systemctl"
    journalctl: str = "/usr/bin/journalctl"
    cpu_sample_seconds: float = Field(0.5, ge=0.05, le=5.0)
    command_timeout_seconds: float = Field(15.0, gt=0, le=120)
    restart_timeout_seconds: float = Field(120.0, gt=0, le=600)

    @field_validator("mounts")
    @classmethod
    def _absolute_mounts(cls, mounts: list[str]) -> list[str]:
        for mount in mounts:
            if not mount.startswith("/"):
                raise ValueError(f"mount point {mount!r} must be an absolute path")
        return mounts

    @field_validator("allowed_units", "restartable_units")
    @classmethod
    def _unit_names(cls, units: list[str]) -> list[str]:
        for unit in units:
            if not UNIT_NAME.match(unit):
                raise ValueError(f"{unit!r} is not a systemd service name ending in .service")
        return units

    @model_validator(mode="after")
    def _restartable_are_allowed(self) -> "Settings":
        stray = sorted(set(self.restartable_units) - set(self.allowed_units))
        if stray:
            raise ValueError(f"restartable_units must also be in allowed_units: {', '.join(stray)}")
        return self


# --- structured outputs -----------------------------------------------------------------------------------------


class CpuReport(BaseModel):
    board: str | None = Field(description="Board model from /proc/cpuinfo, e.g. 'Raspberry Pi 5 Model B Rev 1.0'")
    core_type: str | None = Field(description="CPU core, e.g. 'Arm Cortex-A76'")
    cores: int
    usage_percent: float | None = Field(description="All cores busy over the sample, 0-100; null if unmeasurable")
    per_core_percent: list[float | None]
    frequency_mhz: list[int | None] = Field(description="Current clock of each core in MHz")
    max_frequency_mhz: int | None
    sample_seconds: float


class SwapInfo(BaseModel):
    device: str
    kind: str
    size_mib: int
    used_mib: int
    priority: int


class ZramInfo(BaseModel):
    device: str
    size_mib: int = Field(description="Uncompressed capacity of the compressed-RAM swap device")
    stored_mib: int | None = Field(description="Data stored, before compression")
    compressed_mib: int | None
    memory_used_mib: int | None = Field(description="RAM the device really uses")
    algorithm: str | None


class MemoryReport(BaseModel):
    total_mib: int
    available_mib: int = Field(description="RAM that programs can still get without swapping")
    used_mib: int
    used_percent: float
    swap_total_mib: int
    swap_used_mib: int
    swap_devices: list[SwapInfo]
    zram: list[ZramInfo]


class MountUsage(BaseModel):
    mount: str
    total_gib: float | None = None
    used_gib: float | None = None
    available_gib: float | None = None
    used_percent: float | None = Field(None, description="Like df: used / (used + available)")
    error: str | None = Field(None, description="Why this mount point could not be read")


class DiskReport(BaseModel):
    mounts: list[MountUsage]


class ThermalZoneInfo(BaseModel):
    zone: str
    type: str = Field(description="Sensor name, e.g. cpu-thermal")
    temp_c: float


# Throttling's flag fields: <condition>_now and <condition>_occurred.
THROTTLE_FIELDS = pi.throttle_bits(lambda condition: condition.field, now="_now")


class Throttling(BaseModel):
    available: bool
    source: str | None = Field(description="Where the flags came from")
    raw: str | None = Field(description="The firmware's get_throttled word in hex, e.g. 0x50005")
    under_voltage_now: bool | None
    arm_freq_capped_now: bool | None
    throttled_now: bool | None
    soft_temp_limit_now: bool | None
    under_voltage_occurred: bool | None = Field(description="Since boot")
    arm_freq_capped_occurred: bool | None = Field(description="Since boot")
    throttled_occurred: bool | None = Field(description="Since boot")
    soft_temp_limit_occurred: bool | None = Field(description="Since boot")
    summary: str


class ThermalReport(BaseModel):
    zones: list[ThermalZoneInfo]
    hottest_c: float | None
    fan_rpm: int | None = Field(description="Active cooler speed; null when there is no fan sensor")
    under_voltage_alarm: bool | None = Field(description="The rpi_volt sensor's low-voltage alarm; null if absent")
    throttling: Throttling
    note: str | None = None


class UptimeReport(BaseModel):
    uptime_seconds: int
    uptime: str = Field(description="Uptime in words, e.g. '3 d 4 h 12 min'")
    booted_at: str = Field(description="Boot time, ISO 8601 in UTC")
    load_1: float
    load_5: float
    load_15: float
    cores: int
    load_per_core_1: float = Field(description="1-minute load divided by cores; above 1 means queued work")
    runnable_tasks: int
    total_tasks: int


class InterfaceInfo(BaseModel):
    name: str
    state: str = Field(description="up, down, dormant or unknown")
    mac: str | None
    mtu: int | None
    rx_bytes: int | None
    tx_bytes: int | None
    addresses: list[str] = Field(description="IP addresses with prefix length, e.g. 192.168.1.50/24")


class NetworkReport(BaseModel):
    hostname: str | None
    interfaces: list[InterfaceInfo]
    note: str | None = None


class ServiceStatus(BaseModel):
    unit: str
    description: str
    load_state: str = Field(description="loaded, not-found, masked ...")
    active_state: str = Field(description="active, inactive, failed, activating ...")
    sub_state: str = Field(description="running, exited, dead, failed ...")
    enabled: str = Field(description="enabled, disabled, static ... (UnitFileState)")
    since: str | None = Field(description="When the service entered its current state")
    main_pid: int | None
    restarts: int | None = Field(description="Automatic restarts by systemd since the unit was loaded")
    result: str = Field(description="success, or why it last stopped (exit-code, signal, timeout ...)")


class ServiceStatusReport(BaseModel):
    services: list[ServiceStatus]


class ServiceLogs(BaseModel):
    unit: str
    lines: list[str] = Field(description="Journal lines, oldest first, each starting with an ISO timestamp")


class RestartReport(BaseModel):
    unit: str
    restarted: bool
    status: ServiceStatus


def _service(status: UnitStatus) -> ServiceStatus:
    return ServiceStatus(
        unit=status.unit,
        description=status.description,
        load_state=status.load_state,
        active_state=status.active_state,
        sub_state=status.sub_state,
        enabled=status.unit_file_state,
        since=status.since,
        main_pid=status.main_pid,
        restarts=status.restarts,
        result=status.result,
    )


class HostError(Exception):
    """A reading this host cannot give (a missing /proc file); the message is one line for the model."""


def _mib(value: int | None) -> int | None:
    return None if value is None else round(value / MIB)


def _gib(value: int) -> float:
    return round(value / GIB, 2)


# --- the server -------------------------------------------------------------------------------------------------


class _Host:
    """The readings, with the file system roots and the command runner of one configuration."""

    def __init__(self, settings: Settings, runner: Runner, sleep: Callable[[float], None]) -> None:
        self.settings = settings
        self.proc = settings.proc_root / "proc"
        self.sys = settings.sys_root / "sys"
        self.run = runner
        self.sleep = sleep

    def proc_text(self, relative: str) -> str:
        text = sysinfo.read_text(self.proc / relative)
        if text is None:
            raise HostError(f"/proc/{relative} is not readable on this host")
        return text

    def command(self, argv: list[str]) -> tuple[str | None, str]:
        """Output of a helper command, or None and the reason it gave none."""
        try:
            done = self.run(argv, self.settings.command_timeout_seconds)
        except UnitError as err:
            return None, str(err)
        if done.returncode != 0:
            return None, f"{Path(argv[0]).name} failed: {summarise(done.stderr)}"
        return done.stdout, ""

    def cpu(self) -> CpuReport:
        identity = sysinfo.parse_cpuinfo(self.proc_text("cpuinfo"))
        before = sysinfo.parse_stat(self.proc_text("stat"))
        interval = self.settings.cpu_sample_seconds
        self.sleep(interval)
        after = sysinfo.parse_stat(self.proc_text("stat"))

        def usage(name: str) -> float | None:
            return sysinfo.usage_percent(before[name], after[name]) if name in before and name in after else None

        cores = identity.cores or sum(1 for name in after if name != "cpu")
        cpu_dir = self.sys / "devices/system/cpu"
        freqs = [sysinfo.read_int(cpu_dir / f"cpu{n}/cpufreq/scaling_cur_freq") for n in range(cores)]
        max_freq = sysinfo.read_int(cpu_dir / "cpu0/cpufreq/cpuinfo_max_freq")
        return CpuReport(
            board=identity.board,
            core_type=identity.core_type,
            cores=cores,
            usage_percent=usage("cpu"),
            per_core_percent=[usage(f"cpu{n}") for n in range(cores)],
            frequency_mhz=[None if khz is None else round(khz / 1000) for khz in freqs],
            max_frequency_mhz=None if max_freq is None else round(max_freq / 1000),
            sample_seconds=interval,
        )

    def memory(self) -> MemoryReport:
        info = sysinfo.parse_meminfo(self.proc_text("meminfo"))
        total, available = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
        swap_total, swap_free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
        swaps = sysinfo.parse_swaps(sysinfo.read_text(self.proc / "swaps") or "")
        return MemoryReport(
            total_mib=round(total / MIB),
            available_mib=round(available / MIB),
            used_mib=round((total - available) / MIB),
            used_percent=round(100 * (total - available) / total, 1) if total else 0.0,
            swap_total_mib=round(swap_total / MIB),
            swap_used_mib=round((swap_total - swap_free) / MIB),
            swap_devices=[
                SwapInfo(
                    device=s.name,
                    kind=s.kind,
                    size_mib=round(s.size_bytes / MIB),
                    used_mib=round(s.used_bytes / MIB),
                    priority=s.priority,
                )
                for s in swaps
            ],
            zram=[
                ZramInfo(
                    device=z.name,
                    size_mib=round(z.disksize_bytes / MIB),
                    stored_mib=_mib(z.original_bytes),
                    compressed_mib=_mib(z.compressed_bytes),
                    memory_used_mib=_mib(z.memory_used_bytes),
                    algorithm=z.algorithm,
                )
                for z in sysinfo.read_zram(self.sys / "block")
            ],
        )

    def disk(self) -> DiskReport:
        mounts = []
        for mount in self.settings.mounts:
            try:
                usage = sysinfo.disk_usage(mount)
            except OSError as err:
                mounts.append(MountUsage(mount=mount, error=f"cannot read {mount}: {err.strerror or err}"))
                continue
            in_use = usage.used_bytes + usage.available_bytes
            mounts.append(
                MountUsage(
                    mount=mount,
                    total_gib=_gib(usage.total_bytes),
                    used_gib=_gib(usage.used_bytes),
                    available_gib=_gib(usage.available_bytes),
                    used_percent=round(100 * usage.used_bytes / in_use, 1) if in_use else 0.0,
                )
            )
        return DiskReport(mounts=mounts)

    def throttled_word(self) -> tuple[int | None, str]:
        """The firmware's throttled word and where it came from, or None and why there is none."""
        reasons = []
        path = self.settings.throttled_path or pi.find_throttled_file(self.sys)
        if path is not None:
            word = pi.parse_throttled(sysinfo.read_text(path) or "")
            if word is not None:
                return word, str(path)
            reasons.append(f"{path} holds no readable throttled word")
        if self.settings.vcgencmd:
            output, why = self.command([self.settings.vcgencmd, "get_throttled"])
            word = pi.parse_throttled(output or "")
            if word is not None:
                return word, "vcgencmd get_throttled"
            reasons.append(why or "vcgencmd printed no throttled word")
        return None, "; ".join(reasons) or "no get_throttled source"

    def throttling(self) -> Throttling:
        word, source = self.throttled_word()
        if word is None:
            unknown = dict.fromkeys(THROTTLE_FIELDS)
            note = f"not available on this host ({source})"
            return Throttling(available=False, source=None, raw=None, summary=note, **unknown)
        flags = pi.decode_throttled(word, THROTTLE_FIELDS)
        parts = []
        for when, suffix in (("now", "_now"), ("since boot", "_occurred")):
            names = [name.removesuffix(suffix).replace("_", " ") for name, on in flags.items() if on and suffix in name]
            if names:
                parts.append(f"{when}: {', '.join(names)}")
        summary = "; ".join(parts) or "no under-voltage or throttling since boot"
        return Throttling(available=True, source=source, raw=f"{word:#x}", summary=summary, **flags)

    def thermal(self) -> ThermalReport:
        zones = sysinfo.read_thermal_zones(self.sys / "class/thermal")
        hwmon = self.sys / "class/hwmon"
        fan = sysinfo.hwmon_by_name(hwmon, "pwmfan")
        volt = sysinfo.hwmon_by_name(hwmon, "rpi_volt")
        alarm = sysinfo.read_int(volt / "in0_lcrit_alarm") if volt else None
        return ThermalReport(
            zones=[ThermalZoneInfo(zone=z.zone, type=z.kind, temp_c=z.temp_c) for z in zones],
            hottest_c=max((z.temp_c for z in zones), default=None),
            fan_rpm=sysinfo.read_int(fan / "fan1_input") if fan else None,
            under_voltage_alarm=None if alarm is None else bool(alarm),
            throttling=self.throttling(),
            note=None if zones else "no temperature sensors are available on this host",
        )

    def uptime(self, now: datetime) -> UptimeReport:
        seconds = sysinfo.parse_uptime(self.proc_text("uptime"))
        load = sysinfo.parse_loadavg(self.proc_text("loadavg"))
        cores = sysinfo.parse_cpuinfo(sysinfo.read_text(self.proc / "cpuinfo") or "").cores or 1
        booted = (now - timedelta(seconds=seconds)).replace(microsecond=0)
        return UptimeReport(
            uptime_seconds=int(seconds),
            uptime=format_duration(int(seconds), max_units=3),
            booted_at=booted.isoformat(),
            load_1=load.one,
            load_5=load.five,
            load_15=load.fifteen,
            cores=cores,
            load_per_core_1=round(load.one / cores, 2),
            runnable_tasks=load.running,
            total_tasks=load.total,
        )

    def network(self) -> NetworkReport:
        interfaces = sysinfo.read_interfaces(self.sys / "class/net")
        addresses: dict[str, list[str]] = {}
        note = None
        if self.settings.ip:
            output, why = self.command([self.settings.ip, "-j", "addr", "show"])
            addresses = sysinfo.parse_ip_addr_json(output) if output is not None else {}
            note = None if output is not None else f"addresses unavailable: {why}"
        hostname = sysinfo.read_text(self.proc / "sys/kernel/hostname")
        return NetworkReport(
            hostname=hostname.strip() if hostname else None,
            interfaces=[
                InterfaceInfo(
                    name=i.name,
                    state=i.state,
                    mac=i.mac,
                    mtu=i.mtu,
                    rx_bytes=i.rx_bytes,
                    tx_bytes=i.tx_bytes,
                    addresses=addresses.get(i.name, []),
                )
                for i in interfaces
            ],
            note=note,
        )


def build_server(
    settings: Settings,
    *,
    runner: Runner = run_command,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> MCPServer:
    """Create the `system` server; tests inject the command runner, the CPU-sample sleep and the clock."""
    host = _Host(settings, runner, sleep)
    units = Units(
        settings.allowed_units,
        settings.restartable_units,
        systemctl=settings.systemctl,
        journalctl=settings.journalctl,
        runner=runner,
        timeout=settings.command_timeout_seconds,
        restart_timeout=settings.restart_timeout_seconds,
    )
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS)
    allowed = ", ".join(settings.allowed_units) or "none"
    restartable = ", ".join(settings.restartable_units) or "none"
    unit_arg = Annotated[str, Field(max_length=256, description=f"Service name, exactly one of: {allowed}")]

    # Sync tools run in a worker thread, so the CPU sample's sleep never blocks the event loop.
    @server.tool(annotations=READ_ONLY)
    def cpu() -> CpuReport:
        """CPU model, number of cores, how busy each core is right now (percent) and each core's clock in MHz."""
        with tool_errors(HostError):
            return host.cpu()

    @server.tool(annotations=READ_ONLY)
    def memory() -> MemoryReport:
        """RAM total, available and used (MiB and percent), swap use, and the zram compressed swap if present."""
        with tool_errors(HostError):
            return host.memory()

    @server.tool(annotations=READ_ONLY)
    def disk() -> DiskReport:
        """Size, used and free space (GiB and percent) of the appliance's configured disks."""
        return host.disk()

    @server.tool(annotations=READ_ONLY)
    def temperature_and_throttling() -> ThermalReport:
        """Temperatures in °C, fan speed, and whether the Pi is under-voltage or throttled now or since boot."""
        return host.thermal()

    @server.tool(annotations=READ_ONLY)
    def uptime_and_load() -> UptimeReport:
        """How long the appliance has been running, when it booted, and the 1/5/15-minute load averages."""
        with tool_errors(HostError):
            return host.uptime(clock())

    @server.tool(annotations=READ_ONLY)
    def network() -> NetworkReport:
        """Network interfaces: up or down, MAC address, IP addresses and bytes received/sent."""
        return host.network()

    @server.tool(annotations=READ_ONLY)
    def service_status(
        unit: Annotated[str, Field(max_length=256, description=f"One service name, or '' for all of: {allowed}")] = "",
    ) -> ServiceStatusReport:
        """Whether the appliance's services are running: state, since when, main PID and restart count."""
        with tool_errors(UnitError):
            statuses = units.status([unit] if unit else list(units.allowed))
            return ServiceStatusReport(services=[_service(status) for status in statuses])

    @server.tool(annotations=READ_ONLY)
    def service_logs(
        unit: unit_arg,
        lines: Annotated[
            int, Field(ge=1, le=MAX_LOG_LINES, description=f"How many recent lines, 1 to {MAX_LOG_LINES}")
        ] = 50,
    ) -> ServiceLogs:
        """The most recent journal lines of one appliance service, oldest first."""
        with tool_errors(UnitError):
            return ServiceLogs(unit=unit, lines=units.logs(unit, lines))

    @server.tool(annotations=RESTART)
    def restart_service(
        unit: Annotated[str, Field(max_length=256, description=f"Service name, exactly one of: {restartable}")],
    ) -> RestartReport:
        """Restart one appliance service and return its new status. Interrupts the service; use only when asked."""
        with tool_errors(UnitError):
            status = units.restart(unit)
            return RestartReport(unit=unit, restarted=True, status=_service(status))

    return server


def create(settings: Settings) -> MCPServer:
    for root, probe in ((settings.proc_root, "proc/stat"), (settings.sys_root, "sys/class")):
        if not (root / probe).exists():
            raise ConfigError(f"server system: {root / probe} does not exist; check proc_root/sys_root")
    return build_server(settings)
