"""The jetson role on the simulated Jetson Orin Nano Super (fixtures: molecule/jetson/files).

Its re-runs with changed variables run jetson.yml (the jetson role alone), not the whole converge.
"""

import pytest

from tests.nodes import scenario_playbook

STATUS = "/var/lib/nvpmodel/status"
CALLS = "/var/lib/nvpmodel/calls"
RELEASE = "/etc/nv_tegra_release"
UNIT = "/etc/systemd/system/jetson-clocks.service"
CLOCKS_RUNS = "/var/lib/jetson_clocks-double/runs"


@pytest.fixture
def converge():
    """The jetson role alone, again, with extra variables."""
    return scenario_playbook("jetson.yml")


def _mode_changes(host) -> list[str]:
    return [c for c in host.file(CALLS).content_string.splitlines() if c.startswith("nvpmodel -m")]


def test_power_mode_chosen_by_name(host):
    # 25W is id 1 in the Super conf (0=15W 1=25W 2=MAXN_SUPER 3=7W)
    assert host.file(STATUS).content_string.strip() == "pmode:0001"
    assert host.check_output("nvpmodel -q").splitlines() == ["NV Power Mode: 25W", "1"]


def test_power_mode_set_once_across_converge_and_idempotence(host):
    assert _mode_changes(host) == ["nvpmodel -m 1"]


def test_jetson_clocks_unit_enabled_and_run(host):
    unit = host.file(UNIT)
    assert unit.is_file
    assert unit.mode == 0o644
    assert "ExecStart=/usr/bin/jetson_clocks" in unit.content_string
    assert "After=nvpmodel.service" in unit.content_string
    service = host.service("jetson-clocks")
    assert service.is_enabled
    assert service.is_running
    assert host.file(CLOCKS_RUNS).content_string.strip()


def test_nvzramconfig_disabled(host):
    service = host.service("nvzramconfig")
    assert not service.is_enabled
    assert not service.is_running


def test_headless_default_target(host):
    assert host.check_output("systemctl get-default") == "multi-user.target"


def test_reboot_is_flagged(host):
    assert "restart required" in host.file("/var/run/reboot-required").content_string


def test_unknown_power_mode_fails_listing_the_names_and_changes_nothing(host, converge):
    status = host.file(STATUS).content_string
    calls = host.file(CALLS).content_string
    run = converge({"jetson_power_mode": "NOT_A_MODE"})
    assert run.rc != 0, run.output
    assert run.failed == 1, run.output
    assert run.changed == 0, run.output
    assert (
        'jetson_power_mode "NOT_A_MODE" is not a power mode of /etc/nvpmodel.conf; available: 15W, 25W, MAXN_SUPER, 7W.'
    ) in run.text, run.output
    assert host.file(STATUS).content_string == status
    assert host.file(CALLS).content_string == calls, "nvpmodel must not even be queried"


def test_jetpack5_is_skipped_without_changes(host, converge):
    everything_different = {
        "jetson_power_mode": "MAXN_SUPER",
        "jetson_clocks_enabled": False,
        "jetson_headless": False,
        "jetson_nvzramconfig_enabled": True,
    }
    host.run_expect([0], "sed -i '1s/^# R36 /# R35 /' %s", RELEASE)
    try:
        run = converge(everything_different)
    finally:
        host.run_expect([0], "sed -i '1s/^# R35 /# R36 /' %s", RELEASE)
    assert run.rc == 0, run.output
    assert run.changed == 0, run.output
    assert "L4T R35 (JetPack 5) found: only L4T R36 (JetPack 6) is supported" in run.text
    assert host.file(STATUS).content_string.strip() == "pmode:0001"
    assert host.file(UNIT).exists


def test_jetson_clocks_disabled_is_stopped_and_removed(host, converge):
    try:
        run = converge({"jetson_clocks_enabled": False})
        assert run.rc == 0, run.output
        assert not host.file(UNIT).exists
        service = host.service("jetson-clocks")
        assert not service.is_enabled
        assert not service.is_running
    finally:
        restored = converge({})
    assert restored.rc == 0, restored.output
    assert host.service("jetson-clocks").is_enabled
