"""The raspberrypi role on the simulated Raspberry Pi 5 (fixtures: molecule/raspberrypi/files)."""

import base64

import pytest

CONFIG = "/boot/firmware/config.txt"
CMDLINE = "/boot/firmware/cmdline.txt"
BEGIN = "# BEGIN PicoCluster Claw: raspberrypi role"
END = "# END PicoCluster Claw: raspberrypi role"
ORIGINAL_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait cfg80211.ieee80211_regdom=GB"
)


def _block(host) -> list[str]:
    lines = host.file(CONFIG).content_string.splitlines()
    assert lines.count(BEGIN) == 1
    assert lines.count(END) == 1
    return lines[lines.index(BEGIN) + 1 : lines.index(END)]


def test_config_block_is_an_all_section_at_the_end(host):
    lines = host.file(CONFIG).content_string.splitlines()
    assert lines[-1] == END
    settings = [line for line in _block(host) if line and not line.startswith("#")]
    assert settings == [
        "[all]",
        "dtparam=spi=on",
        "dtparam=i2c_arm=on",
        "dtparam=pciex1",
        "dtparam=pciex1_gen=3",
        "gpio=17=op,dh",
        "dtoverlay=disable-bt",
    ]


def test_config_keeps_the_rest_of_the_file(host):
    lines = host.file(CONFIG).content_string.splitlines()
    for line in ("dtoverlay=vc4-kms-v3d", "arm_64bit=1", "[cm5]", "otg_mode=1", "#dtparam=spi=on"):
        assert line in lines


def test_cmdline_is_still_one_line_with_the_extra_word(host):
    # base64: the ansible backend strips trailing newlines from command output and file content
    content = base64.b64decode(host.check_output("base64 -w0 %s", CMDLINE)).decode()
    assert content.endswith("\n")
    assert "\n" not in content[:-1]
    assert content == ORIGINAL_CMDLINE + " cgroup_enable=memory\n"
    assert content.split().count("rootwait") == 1


def test_reboot_is_flagged_not_done(host):
    marker = host.file("/var/run/reboot-required")
    assert marker.is_file
    assert "restart required" in marker.content_string


def test_gpio_udev_rule(host):
    rule = host.file("/etc/udev/rules.d/99-picocluster-claw-gpio.rules")
    assert rule.mode == 0o644
    content = rule.content_string
    assert 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in content
    assert 'KERNEL=="gpiomem*", GROUP="gpio", MODE="0660"' in content


def test_gpio_users(host):
    assert host.group("gpio").exists
    assert {"gpio", "video"} <= set(host.user("claw").groups)
    assert not host.user("pi").exists, "a missing GPIO user must be skipped, not created"


def test_i2c_dev_loaded_at_boot(host):
    assert host.file("/etc/modules-load.d/picocluster-claw-i2c.conf").contains("^i2c-dev$")


def test_dphys_swapfile_disabled(host):
    service = host.service("dphys-swapfile")
    assert not service.is_enabled
    assert not service.is_running


def test_legacy_rpi_gpio_removed(host):
    assert not host.package("python3-rpi.gpio").is_installed
    assert not host.file("/usr/lib/python3/dist-packages/RPi/GPIO/__init__.py").exists


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"raspberrypi_cmdline_extra": ["quiet splash"]}, "must hold single non-empty words"),
        ({"raspberrypi_pcie_gen": 4}, "raspberrypi_pcie_gen must be one of: 2, 3"),
    ],
    ids=["cmdline-word-with-a-space", "pcie-gen-4"],
)
def test_invalid_variables_fail_before_any_change(host, converge, extra_vars, message):
    before = {path: host.file(path).sha256sum for path in (CONFIG, CMDLINE)}
    run = converge(extra_vars)
    assert run.rc != 0, run.output
    assert run.failed == 1, run.output
    assert run.changed == 0, run.output
    assert message in run.text, run.output
    assert {path: host.file(path).sha256sum for path in (CONFIG, CMDLINE)} == before
