"""The status watcher: the pure evaluation table, the probes with fakes, and polls against a real daemon."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import re
from pathlib import Path

import claw.leds.watcher as watcher_module
import httpx
import pytest
from claw.leds.client import LedClient
from claw.leds.watcher import (
    Observations,
    Probes,
    Signal,
    WatcherSettings,
    add_arguments,
    evaluate,
    metric_value,
    parse_throttled,
    poll_once,
    run,
    settings_from_args,
    watch,
)

UNITS = ["openclaw.service", "nginx.service"]
SETTINGS = WatcherSettings(
    units=UNITS,
    crush_url="http://crush:8080/health",
    throttled_file=Path("/sys/get_throttled"),
    thermal_file=Path("/sys/thermal_zone0/temp"),
    thermal_max_c=80,
    prometheus_url="http://prom:9090",
    inference_url="http://crush:8080/metrics",
)
ALL_FINE = Observations(
    unit_states={"openclaw.service": "active", "nginx.service": "active"},
    crush_error="",
    throttled_flags=0x50000,  # under-voltage and throttling happened since boot, but not now
    temperature_c=61.5,
    alerts=[{"labels": {"alertname": "Watchdog"}, "state": "pending"}],
    inference_value=0.0,
)
NOTHING_SIGNALLED = {"systemd": None, "crush": None, "thermal": None, "prometheus": None, "inference": None}


def firing(*names: str) -> list[dict]:
    return [{"labels": {"alertname": name, "severity": "critical"}, "state": "firing"} for name in names]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {}),
        (
            {"unit_states": {"openclaw.service": "active", "nginx.service": "failed"}},
            {"systemd": Signal("service_down", "nginx.service failed")},
        ),
        (
            {"unit_states": {"nginx.service": "reloading"}},
            {"systemd": Signal("service_down", "openclaw.service unknown")},
        ),
        (
            {"crush_error": "ConnectError: [Errno 111] Connection refused"},
            {"crush": Signal("crush_unreachable", "ConnectError: [Errno 111] Connection refused")},
        ),
        ({"crush_error": "HTTP 503"}, {"crush": Signal("crush_unreachable", "HTTP 503")}),
        ({"throttled_flags": 0x50005}, {"thermal": Signal("throttled", "under-voltage, throttled")}),
        ({"throttled_flags": 0x8}, {"thermal": Signal("throttled", "soft temperature limit")}),
        ({"temperature_c": 85.04}, {"thermal": Signal("throttled", "85.0 °C (limit 80 °C)")}),
        ({"throttled_flags": None}, {}),
        (
            {"alerts": firing("CrushDown", "DiskFull", "CrushDown")},
            {"prometheus": Signal("alert_firing", "CrushDown, DiskFull")},
        ),
        ({"alerts": firing(*"FEDCBA")}, {"prometheus": Signal("alert_firing", "A, B, C, D and 2 more")}),
        ({"inference_value": 2.0}, {"inference": Signal("inference")}),
    ],
)
def test_evaluation_table(changes, expected):
    assert evaluate(SETTINGS, dataclasses.replace(ALL_FINE, **changes)) == NOTHING_SIGNALLED | expected


def test_unknown_inputs_leave_their_source_alone():
    unknown = Observations(crush_error="")  # everything but crush unknown this poll
    assert evaluate(SETTINGS, unknown) == {"crush": None}


def test_sources_that_are_not_configured_are_never_signalled():
    down = dataclasses.replace(ALL_FINE, unit_states={}, crush_error="HTTP 500", alerts=firing("X"))
    assert evaluate(WatcherSettings(), down) == {}


@pytest.mark.parametrize(("text", "flags"), [("0x50005\n", 0x50005), ("50005", 0x50005), ("throttled=0x0\n", 0)])
def test_parse_throttled(text, flags):
    assert parse_throttled(text) == flags


def test_metric_value_sums_one_metric_only():
    text = (
        "# HELP llamacpp:requests_processing Number of requests processing.\n"
        "# TYPE llamacpp:requests_processing gauge\n"
        'llamacpp:requests_processing{slot="0"} 1\n'
        'llamacpp:requests_processing{slot="1"} 2\n'
        "llamacpp:requests_processing_total 40\n"
    )
    assert metric_value(text, "llamacpp:requests_processing") == 3.0
    assert metric_value(text, "llamacpp:requests_deferred") is None


class FakeAppliance:
    """systemctl and the HTTP endpoints the watcher asks, switchable between healthy and broken."""

    def __init__(self, tmp_path: Path) -> None:
        self.unit_states = "active\nactive\n"
        self.crush_status = 200
        self.alerts: list[dict] = []
        self.processing = 0
        self.commands: list[list[str]] = []
        self.throttled = tmp_path / "get_throttled"
        self.temp = tmp_path / "temp"
        self.throttled.write_text("0\n")
        self.temp.write_text("50000\n")

    async def runner(self, argv, timeout):
        self.commands.append(list(argv))
        return 3, self.unit_states

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(self.crush_status)
        if request.url.path == "/api/v1/alerts":
            return httpx.Response(200, json={"status": "success", "data": {"alerts": self.alerts}})
        if request.url.path == "/metrics":
            return httpx.Response(200, text=f"llamacpp:requests_processing {self.processing}\n")
        return httpx.Response(404)

    def probes(self, settings: WatcherSettings) -> Probes:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return Probes(settings, runner=self.runner, http=http)

    def settings(self, socket: Path) -> WatcherSettings:
        return SETTINGS.model_copy(
            update={"socket": socket, "throttled_file": self.throttled, "thermal_file": self.temp}
        )


@pytest.fixture
def appliance(tmp_path):
    return FakeAppliance(tmp_path)


@pytest.mark.anyio
async def test_probes_observe_the_appliance(appliance, tmp_path):
    appliance.unit_states = "active\nfailed\n"
    appliance.crush_status = 503
    appliance.alerts = firing("CrushDown")
    appliance.processing = 1
    appliance.throttled.write_text("0x4\n")
    appliance.temp.write_text("81234\n")
    seen = await appliance.probes(appliance.settings(tmp_path / "s")).observe()
    assert appliance.commands == [["systemctl", "is-active", "--", *UNITS]]
    assert seen == Observations(
        unit_states={"openclaw.service": "active", "nginx.service": "failed"},
        crush_error="HTTP 503",
        throttled_flags=4,
        temperature_c=81.234,
        alerts=firing("CrushDown"),
        inference_value=1.0,
    )


@pytest.mark.anyio
async def test_probe_failures_become_unknowns_or_unreachable(tmp_path, caplog):
    async def no_systemctl(argv, timeout):
        raise FileNotFoundError(2, "No such file or directory", "systemctl")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    settings = SETTINGS.model_copy(update={"throttled_file": tmp_path / "missing", "thermal_file": tmp_path / "none"})
    probes = Probes(settings, runner=no_systemctl, http=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with caplog.at_level(logging.WARNING, logger="claw.leds.watcher"):
        seen = await probes.observe()
    assert seen == Observations(crush_error="ConnectError: [Errno 111] Connection refused")
    assert "systemctl is-active failed" in caplog.text
    assert f"cannot read {tmp_path / 'missing'}" in caplog.text


@pytest.mark.anyio
async def test_polls_drive_the_daemon_and_clear_when_fine(appliance, daemon, client):
    settings = appliance.settings(daemon.socket_path)
    probes = appliance.probes(settings)
    appliance.unit_states = "failed\nactive\n"
    appliance.crush_status = 502
    appliance.processing = 2
    await poll_once(settings, probes, client)
    answer = await client.get()
    assert [(la["source"], la["state"]) for la in answer["layers"]] == [
        ("crush", "crush_unreachable"),
        ("systemd", "service_down"),
        ("inference", "inference"),
    ]
    assert {la["expires_in"] for la in answer["layers"]} == {3 * settings.interval}
    assert answer["layers"][1]["detail"] == "openclaw.service failed"

    appliance.unit_states = "active\nactive\n"
    appliance.crush_status = 200
    appliance.processing = 0
    await poll_once(settings, probes, client)
    assert (await client.get())["layers"] == []


@pytest.mark.anyio
async def test_the_loop_runs_until_stopped(appliance, daemon, client):
    settings = appliance.settings(daemon.socket_path).model_copy(update={"interval": 0.5})
    appliance.alerts = firing("DiskFull")
    stop = asyncio.Event()
    task = asyncio.create_task(watch(settings, appliance.probes(settings), client, stop))
    for _ in range(200):
        winner = (await client.get())["winner"]
        if winner:
            break
        await asyncio.sleep(0.01)
    assert (winner["source"], winner["state"], winner["detail"]) == ("prometheus", "alert_firing", "DiskFull")
    stop.set()
    await asyncio.wait_for(task, 2)


@pytest.mark.anyio
async def test_a_missing_daemon_is_logged_not_fatal(appliance, sock_dir, caplog):
    settings = appliance.settings(sock_dir / "absent.sock")
    appliance.crush_status = 500
    with caplog.at_level(logging.WARNING, logger="claw.leds.watcher"):
        desired = await poll_once(settings, appliance.probes(settings), LedClient(settings.socket))
    assert desired["crush"] == Signal("crush_unreachable", "HTTP 500")
    assert f"LED daemon unavailable at {sock_dir / 'absent.sock'}" in caplog.text


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_settings_come_from_yaml_with_flags_on_top(tmp_path):
    config = tmp_path / "watch.yml"
    config.write_text("units: [openclaw.service]\ninterval: 10\ncrush_url: http://crush:8080/health\n")
    settings = settings_from_args(parse(["--config", str(config), "--interval", "2", "--unit", "a", "--unit", "b"]))
    assert settings.units == ["a", "b"]
    assert settings.interval == 2
    assert settings.crush_url == "http://crush:8080/health"
    assert settings.signal_ttl == 6


def test_bad_settings_name_the_key(tmp_path):
    config = tmp_path / "watch.yml"
    config.write_text("unitz: [x]\n")
    with pytest.raises(ValueError, match="unitz: Extra inputs are not permitted"):
        settings_from_args(parse(["--config", str(config)]))
    with pytest.raises(ValueError, match=r"interval: Input should be greater than or equal to 0\.5"):
        settings_from_args(parse(["--interval", "0.1"]))


def test_auto_throttled_file_is_the_firmware_node_where_there_is_one(monkeypatch, tmp_path):
    pi5 = Path(__file__).resolve().parents[1] / "fixtures" / "pi5_sysfs" / "sys"
    monkeypatch.setattr(watcher_module, "SYS_DIR", pi5)
    found = WatcherSettings(throttled_file="auto").throttled_file
    assert found == pi5 / "devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled"
    assert parse_throttled(found.read_text()) == 0x50005
    monkeypatch.setattr(watcher_module, "SYS_DIR", tmp_path)  # not a Pi: nothing to watch
    assert WatcherSettings(throttled_file="auto").throttled_file is None
    assert WatcherSettings(throttled_file="/run/flags").throttled_file == Path("/run/flags")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("crush_url: crush:8080/health\n", "crush_url: expected an http:// or https:// URL, got 'crush:8080/health'"),
        ("prometheus_url: 127.0.0.1:9090\n", "prometheus_url: expected an http:// or https:// URL"),
        ("units: ['-bad unit']\n", "units.0: String should match pattern"),
    ],
)
def test_settings_refuse_bad_urls_and_unit_names(tmp_path, yaml_text, expected):
    config = tmp_path / "watch.yml"
    config.write_text(yaml_text)
    with pytest.raises(ValueError, match=re.escape(expected)):
        settings_from_args(parse(["--config", str(config)]))


def test_check_validates_the_file_and_watches_nothing(tmp_path, capsys):
    config = tmp_path / "watch.yml"
    config.write_text("units: [openclaw.service]\ncrush_url: http://crush:8080/health\n")
    assert run(parse(["--check", "--config", str(config)])) == 0
    assert "the settings are valid" in capsys.readouterr().out
    config.write_text("interval: 0\n")
    assert run(parse(["--check", "--config", str(config)])) == 2
    assert "interval: Input should be greater than or equal to 0.5" in capsys.readouterr().err
