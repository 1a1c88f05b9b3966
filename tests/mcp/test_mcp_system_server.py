"""The `system` MCP server against a fake Raspberry Pi 5 /proc + /sys tree and fake systemctl/journalctl/ip."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from claw.mcp.registry import ConfigError
from claw.mcp.system import Settings, build_server, create
from claw.mcp.units import CommandResult
from mcp import Client
from pydantic import ValidationError

from tests.claw_units import CLAW_UNITS
from tests.mcp.tool_results import error_of, text_of

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PI5 = FIXTURES / "pi5_procfs"
BIN = FIXTURES / "bin"
NOW = datetime(2025, 6, 2, 10, 0, 0, tzinfo=timezone.utc)
READ_TOOLS = {"cpu", "memory", "disk", "temperature_and_throttling", "uptime_and_load", "network"}
SERVICE_TOOLS = {"service_status", "service_logs", "restart_service"}
# The units the rendered /etc/claw/mcp.yml lists (appliance_claw_units); the server itself has no default list.
UNITS = list(CLAW_UNITS)
# Restarting the process that serves the call would cut the answer off: the role leaves claw-mcp.service out.
RESTARTABLE = [unit for unit in UNITS if unit != "claw-mcp.service"]
# Busy and idle jiffies each core gains between the two /proc/stat samples: 50 %, 30 %, 0 %, 100 %.
CORE_DELTAS = [(50, 50), (30, 70), (0, 100), (100, 0)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A private copy of the fake Pi 5 tree, so a test may change it."""
    copy = tmp_path / "root"
    shutil.copytree(PI5, copy)
    return copy


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file where the fake systemctl/journalctl record every argv they were started with."""
    log = tmp_path / "systemd-calls.jsonl"
    monkeypatch.setenv("FAKE_SYSTEMD_LOG", str(log))
    return log


def recorded(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def settings(root: Path, **overrides) -> Settings:
    values = {
        "proc_root": root,
        "sys_root": root,
        "mounts": ["/", str(root)],
        "systemctl": str(BIN / "fake-systemctl"),
        "journalctl": str(BIN / "fake-journalctl"),
        "ip": str(BIN / "fake-ip"),
        "vcgencmd": None,
        "cpu_sample_seconds": 0.1,
        "allowed_units": UNITS,
        "restartable_units": RESTARTABLE,
        **overrides,
    }
    return Settings(**values)


def second_sample(root: Path):
    """A sleep double: instead of waiting, advance /proc/stat by CORE_DELTAS."""

    def sleep(seconds: float) -> None:
        assert seconds == pytest.approx(0.1)
        lines = []
        for line in (root / "proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu"):
                numbers = [int(v) for v in values]
                deltas = [CORE_DELTAS[int(name[3:])]] if name != "cpu" else CORE_DELTAS
                numbers[0] += sum(busy for busy, _ in deltas)
                numbers[3] += sum(idle for _, idle in deltas)
                line = " ".join([name, *map(str, numbers)])
            lines.append(line)
        (root / "proc/stat").write_text("\n".join(lines) + "\n")

    return sleep


def server(root: Path, **overrides):
    return build_server(settings(root, **overrides), sleep=second_sample(root), clock=lambda: NOW)


def test_fake_commands_are_executable():
    for name in ("fake-systemctl", "fake-journalctl", "fake-ip"):
        assert (BIN / name).stat().st_mode & 0o111, f"{name} lost its executable bit"


async def test_tools_list_has_annotations_and_schemas(root):
    async with Client(server(root)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | SERVICE_TOOLS
    for name, tool in tools.items():
        assert tool.description, name
        assert tool.output_schema is not None, name
        assert tool.annotations is not None and tool.annotations.open_world_hint is False, name
        if name in READ_TOOLS:
            assert tool.input_schema.get("properties", {}) == {}, name
    for name in READ_TOOLS | {"service_status", "service_logs"}:
        assert tools[name].annotations.read_only_hint is True, name
        assert tools[name].annotations.destructive_hint is False, name
    restart = tools["restart_service"].annotations
    assert (restart.read_only_hint, restart.destructive_hint, restart.idempotent_hint) == (False, True, False)
    lines = tools["service_logs"].input_schema["properties"]["lines"]
    assert (lines["type"], lines["minimum"], lines["maximum"], lines["default"]) == ("integer", 1, 200, 50)
    unit = tools["service_logs"].input_schema["properties"]["unit"]
    assert unit["maxLength"] == 256
    assert "openclaw.service" in unit["description"]
    assert tools["restart_service"].input_schema["required"] == ["unit"]
    assert "claw-mcp.service" not in tools["restart_service"].input_schema["properties"]["unit"]["description"]


async def test_cpu_usage_from_two_samples_and_frequencies(root):
    async with Client(server(root)) as client:
        result = await client.call_tool("cpu", {})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {
        "board": "Raspberry Pi 5 Model B Rev 1.0",
        "core_type": "Arm Cortex-A76",
        "cores": 4,
        "usage_percent": 45.0,
        "per_core_percent": [50.0, 30.0, 0.0, 100.0],
        "frequency_mhz": [2400, 2400, 2400, 2400],
        "max_frequency_mhz": 2400,
        "sample_seconds": 0.1,
    }


async def test_cpu_without_a_tick_between_samples_is_unknown_not_zero(root):
    settings_ = settings(root)
    async with Client(build_server(settings_, sleep=lambda _: None)) as client:
        result = await client.call_tool("cpu", {})
    assert result.structured_content["usage_percent"] is None
    assert result.structured_content["per_core_percent"] == [None] * 4


async def test_memory_swap_and_zram(root):
    async with Client(server(root)) as client:
        result = await client.call_tool("memory", {})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {
        "total_mib": 8052,
        "available_mib": 6039,
        "used_mib": 2013,
        "used_percent": 25.0,
        "swap_total_mib": 2048,
        "swap_used_mib": 64,
        "swap_devices": [
            {"device": "/dev/zram0", "kind": "partition", "size_mib": 2048, "used_mib": 64, "priority": 100}
        ],
        "zram": [
            {
                "device": "zram0",
                "size_mib": 2048,
                "stored_mib": 64,
                "compressed_mib": 18,
                "memory_used_mib": 20,
                "algorithm": "zstd",
            }
        ],
    }


async def test_disk_reports_each_mount_and_a_missing_one_precisely(root):
    missing = str(root / "no-such-mount")
    async with Client(server(root, mounts=["/", missing])) as client:
        result = await client.call_tool("disk", {})
    assert not result.is_error, text_of(result)
    first, second = result.structured_content["mounts"]
    assert first["mount"] == "/"
    assert first["total_gib"] > 0 and 0 <= first["used_percent"] <= 100
    assert first["used_gib"] <= first["total_gib"] and first["error"] is None
    assert second == {
        "mount": missing,
        "total_gib": None,
        "used_gib": None,
        "available_gib": None,
        "used_percent": None,
        "error": f"cannot read {missing}: No such file or directory",
    }


async def test_temperature_and_throttling_decodes_the_pi5_firmware_word(root):
    async with Client(server(root)) as client:
        result = await client.call_tool("temperature_and_throttling", {})
    assert not result.is_error, text_of(result)
    report = result.structured_content
    assert report["zones"] == [{"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 52.35}]
    assert report["hottest_c"] == 52.35
    assert report["fan_rpm"] == 2912
    assert report["under_voltage_alarm"] is True
    throttling = report["throttling"]
    assert throttling["available"] is True
    assert throttling["source"].endswith("soc@107c000000:firmware/get_throttled")
    assert throttling["raw"] == "0x50005"
    assert throttling["under_voltage_now"] is True
    assert throttling["throttled_now"] is True
    assert throttling["arm_freq_capped_now"] is False
    assert throttling["soft_temp_limit_now"] is False
    assert throttling["under_voltage_occurred"] is True
    assert throttling["throttled_occurred"] is True
    assert throttling["arm_freq_capped_occurred"] is False
    assert throttling["soft_temp_limit_occurred"] is False
    assert throttling["summary"] == "now: under voltage, throttled; since boot: under voltage, throttled"


async def test_throttling_from_a_configured_file_in_vcgencmd_form(root, tmp_path):
    word = tmp_path / "throttled"
    word.write_text("throttled=0x80008\n")
    async with Client(server(root, throttled_path=word)) as client:
        throttling = (await client.call_tool("temperature_and_throttling", {})).structured_content["throttling"]
    assert throttling["raw"] == "0x80008"
    assert throttling["soft_temp_limit_now"] is True and throttling["soft_temp_limit_occurred"] is True
    assert throttling["under_voltage_now"] is False
    assert throttling["summary"] == "now: soft temp limit; since boot: soft temp limit"


async def test_throttling_falls_back_to_vcgencmd_through_the_runner(root):
    (root / "sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled").unlink()
    seen = []

    def runner(argv, timeout):
        seen.append(list(argv))
        return CommandResult(0, "throttled=0x0\n", "")

    built = build_server(settings(root, vcgencmd="/usr/bin/vcgencmd", ip=None), runner=runner)
    async with Client(built) as client:
        report = (await client.call_tool("temperature_and_throttling", {})).structured_content
    assert seen == [["/usr/bin/vcgencmd", "get_throttled"]]
    assert report["throttling"]["source"] == "vcgencmd get_throttled"
    assert report["throttling"]["raw"] == "0x0"
    assert report["throttling"]["summary"] == "no under-voltage or throttling since boot"


async def test_a_failing_vcgencmd_is_reported_as_not_available(root):
    (root / "sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled").unlink()

    def runner(argv, timeout):
        return CommandResult(255, "", "VCHI initialization failed\n")

    built = build_server(settings(root, vcgencmd="/usr/bin/vcgencmd"), runner=runner)
    async with Client(built) as client:
        throttling = (await client.call_tool("temperature_and_throttling", {})).structured_content["throttling"]
    assert throttling["available"] is False
    assert throttling["summary"] == "not available on this host (vcgencmd failed: VCHI initialization failed)"


async def test_missing_sources_say_not_available_never_zero(tmp_path):
    bare = tmp_path / "bare"
    (bare / "proc").mkdir(parents=True)
    (bare / "sys").mkdir()
    async with Client(server(bare)) as client:
        report = (await client.call_tool("temperature_and_throttling", {})).structured_content
        cpu = await client.call_tool("cpu", {})
    assert report["zones"] == [] and report["hottest_c"] is None and report["fan_rpm"] is None
    assert report["note"] == "no temperature sensors are available on this host"
    throttling = report["throttling"]
    assert throttling["available"] is False and throttling["raw"] is None
    assert throttling["under_voltage_now"] is None
    assert throttling["summary"] == "not available on this host (no get_throttled source)"
    assert error_of(cpu, "cpu") == "/proc/cpuinfo is not readable on this host"


async def test_uptime_and_load(root):
    async with Client(server(root)) as client:
        result = await client.call_tool("uptime_and_load", {})
    assert result.structured_content == {
        "uptime_seconds": 273845,
        "uptime": "3 d 4 h 4 min",
        "booted_at": "2025-05-30T05:55:54+00:00",
        "load_1": 0.42,
        "load_5": 0.35,
        "load_15": 0.3,
        "cores": 4,
        "load_per_core_1": 0.1,
        "runnable_tasks": 2,
        "total_tasks": 389,
    }


async def test_network_interfaces_and_addresses(root):
    async with Client(server(root)) as client:
        result = await client.call_tool("network", {})
    assert not result.is_error, text_of(result)
    report = result.structured_content
    assert report["hostname"] == "claw-pi5"
    assert report["note"] is None
    assert report["interfaces"] == [
        {
            "name": "eth0",
            "state": "up",
            "mac": "d8:3a:dd:4f:2c:10",
            "mtu": 1500,
            "rx_bytes": 1843920311,
            "tx_bytes": 205117442,
            "addresses": ["192.168.1.50/24", "fe80::da3a:ddff:fe4f:2c10/64"],
        },
        {
            "name": "wlan0",
            "state": "down",
            "mac": "d8:3a:dd:4f:2c:11",
            "mtu": 1500,
            "rx_bytes": 0,
            "tx_bytes": 0,
            "addresses": [],
        },
    ]


async def test_network_without_ip_still_lists_interfaces(root, tmp_path):
    async with Client(server(root, ip=str(tmp_path / "no-ip"))) as client:
        report = (await client.call_tool("network", {})).structured_content
    assert [i["name"] for i in report["interfaces"]] == ["eth0", "wlan0"]
    assert report["note"] == f"addresses unavailable: {tmp_path / 'no-ip'} is not installed on this host"


async def test_service_status_of_one_and_of_all_allowed_units(root, calls):
    async with Client(server(root)) as client:
        one = await client.call_tool("service_status", {"unit": "openclaw.service"})
        every = await client.call_tool("service_status", {})
    assert not one.is_error, text_of(one)
    assert one.structured_content["services"] == [
        {
            "unit": "openclaw.service",
            "description": "OpenClaw agent gateway",
            "load_state": "loaded",
            "active_state": "active",
            "sub_state": "running",
            "enabled": "enabled",
            "since": "Mon 2025-06-02 08:15:03 CEST",
            "main_pid": 812,
            "restarts": 0,
            "result": "success",
        }
    ]
    services = {s["unit"]: s for s in every.structured_content["services"]}
    assert list(services) == UNITS
    assert services["threadweaver.service"]["active_state"] == "failed"
    assert services["threadweaver.service"]["restarts"] == 3
    assert services["threadweaver.service"]["main_pid"] is None
    assert services["claw-leds.service"]["load_state"] == "not-found"
    show = recorded(calls)
    assert [argv[:2] for argv in show] == [["systemctl", "show"], ["systemctl", "show"]]
    assert show[0][2].startswith("--property=Id,")
    assert show[0][3:] == ["openclaw.service"]
    assert show[1][3:] == UNITS


@pytest.mark.parametrize(
    ("tool", "unit", "fragment"),
    [
        ("service_status", "../x.service", "is not a valid service name"),
        ("service_status", "a;b.service", "is not a valid service name"),
        ("service_logs", "openclaw.service -f", "is not a valid service name"),
        ("service_logs", "--help.service", "is not a valid service name"),
        ("restart_service", "openclaw", "is not a valid service name"),
        ("restart_service", "$(reboot).service", "is not a valid service name"),
        ("service_status", "ssh.service", "ssh.service is not one of the services this tool may inspect"),
        ("service_logs", "ssh.service", "ssh.service is not one of the services this tool may inspect"),
        ("restart_service", "ssh.service", "ssh.service is not one of the services this tool may inspect"),
        ("restart_service", "claw-mcp.service", "claw-mcp.service may not be restarted by this tool"),
    ],
)
async def test_refused_units_never_start_a_process(root, calls, tool, unit, fragment):
    async with Client(server(root)) as client:
        result = await client.call_tool(tool, {"unit": unit})
    assert fragment in error_of(result, tool)
    assert not calls.exists(), recorded(calls)


async def test_without_configured_units_the_service_tools_answer_for_none(root, calls):
    """No units in the configuration (a desktop client's stdio server): nothing is listed or started."""
    async with Client(server(root, allowed_units=[], restartable_units=[])) as client:
        every = await client.call_tool("service_status", {})
        logs = await client.call_tool("service_logs", {"unit": "openclaw.service"})
        restart = await client.call_tool("restart_service", {"unit": "openclaw.service"})
    assert every.structured_content == {"services": []}
    assert error_of(logs, "service_logs") == (
        "openclaw.service is not one of the services this tool may inspect: none (allowed_units is empty)"
    )
    assert "is not one of the services" in error_of(restart, "restart_service")
    assert not calls.exists(), recorded(calls)


async def test_service_logs_last_lines(root, calls):
    async with Client(server(root)) as client:
        result = await client.call_tool("service_logs", {"unit": "openclaw.service", "lines": 3})
        empty = await client.call_tool("service_logs", {"unit": "claw-exporter.service"})
        too_many = await client.call_tool("service_logs", {"unit": "openclaw.service", "lines": 201})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {
        "unit": "openclaw.service",
        "lines": [
            "2025-06-02T08:00:00+02:00 claw-pi5 openclaw[812]: line 1",
            "2025-06-02T08:00:01+02:00 claw-pi5 openclaw[812]: line 2",
            "2025-06-02T08:00:02+02:00 claw-pi5 openclaw[812]: line 3",
        ],
    }
    assert empty.structured_content == {"unit": "claw-exporter.service", "lines": []}
    assert too_many.is_error
    assert recorded(calls) == [
        ["journalctl", "-u", "openclaw.service", "-n", "3", "-o", "short-iso", "--no-pager"],
        ["journalctl", "-u", "claw-exporter.service", "-n", "50", "-o", "short-iso", "--no-pager"],
    ]


async def test_service_logs_without_journal_access_is_a_precise_error(root, calls, monkeypatch):
    monkeypatch.setenv("FAKE_JOURNAL_DENIED", "1")
    async with Client(server(root)) as client:
        result = await client.call_tool("service_logs", {"unit": "openclaw.service"})
    message = error_of(result, "service_logs")
    assert message.startswith("cannot read the journal of openclaw.service: Hint: You are currently not")
    assert "systemd-journal" in message


async def test_restart_runs_exactly_systemctl_restart_unit(root, calls):
    async with Client(server(root)) as client:
        result = await client.call_tool("restart_service", {"unit": "openclaw.service"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["unit"] == "openclaw.service"
    assert result.structured_content["restarted"] is True
    assert result.structured_content["status"]["active_state"] == "active"
    argvs = recorded(calls)
    assert argvs[0] == ["systemctl", "restart", "openclaw.service"]
    assert argvs[1][:2] == ["systemctl", "show"]
    assert len(argvs) == 2


async def test_a_refused_restart_reports_systemctl_stderr(root, calls, monkeypatch):
    monkeypatch.setenv("FAKE_SYSTEMCTL_DENY", "threadweaver.service")
    async with Client(server(root)) as client:
        result = await client.call_tool("restart_service", {"unit": "threadweaver.service"})
    assert error_of(result, "restart_service") == (
        "systemctl restart threadweaver.service failed (exit 1): Failed to restart threadweaver.service: "
        "Access denied; See system logs and 'systemctl status threadweaver.service' for details."
    )
    assert recorded(calls) == [["systemctl", "restart", "threadweaver.service"]]


async def test_a_missing_systemctl_is_a_precise_error(root, tmp_path):
    async with Client(server(root, systemctl=str(tmp_path / "systemctl"))) as client:
        result = await client.call_tool("service_status", {"unit": "openclaw.service"})
    assert error_of(result, "service_status") == f"{tmp_path / 'systemctl'} is not installed on this host"


def test_settings_defaults_and_refusals(tmp_path):
    defaults = Settings()
    # Port and units come from the rendered configuration only: over stdio none is needed.
    assert defaults.port is None
    assert defaults.mounts == ["/"]
    assert defaults.allowed_units == [] and defaults.restartable_units == []
    for bad in (
        {"allowed_units": ["ssh"]},
        {"allowed_units": ["../x.service"]},
        {"restartable_units": ["ssh.service"]},
        {"mounts": ["relative"]},
        {"colour": "red"},
    ):
        with pytest.raises(ValidationError):
            Settings.model_validate(bad)
    with pytest.raises(ValidationError, match=r"restartable_units must also be in allowed_units: ssh\.service"):
        Settings.model_validate({"allowed_units": ["openclaw.service"], "restartable_units": ["ssh.service"]})


def test_create_refuses_a_root_without_proc(tmp_path):
    with pytest.raises(ConfigError, match="proc/stat does not exist"):
        create(Settings(proc_root=tmp_path, sys_root=tmp_path))
    assert create(Settings(proc_root=PI5, sys_root=PI5)).name == "system"
