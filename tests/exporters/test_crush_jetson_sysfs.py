"""The sysfs readers against the simulated Orin Nano tree, variants of it, and an empty root."""

from __future__ import annotations

from pathlib import Path

import pytest
from claw.exporters import jetson_sysfs as js


def put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


# --- GPU ---------------------------------------------------------------------------------------------------------


def test_gpu_load_is_per_mille_as_ratio(jetson_root):
    assert js.read_gpu_load(jetson_root) == pytest.approx(0.123)


def test_gpu_frequency_from_devfreq_in_hertz(jetson_root):
    assert js.read_gpu_frequency(jetson_root) == 306_000_000.0


def test_gpu_load_from_the_older_gpu0_path(tmp_path):
    put(tmp_path, "sys/devices/gpu.0/load", "999")
    assert js.read_gpu_load(tmp_path) == pytest.approx(0.999)


def test_gpu_devfreq_named_ga10b_is_found_and_other_devfreq_ignored(tmp_path):
    put(tmp_path, "sys/class/devfreq/15340000.vic/cur_freq", "115200000")
    put(tmp_path, "sys/class/devfreq/17000000.ga10b/cur_freq", "624750000")
    put(tmp_path, "sys/class/devfreq/17000000.ga10b/device/load", "500")
    assert [p.name for p in js.gpu_devfreq_dirs(tmp_path)] == ["17000000.ga10b"]
    assert js.read_gpu_frequency(tmp_path) == 624_750_000.0
    assert js.read_gpu_load(tmp_path) == pytest.approx(0.5)


def test_gpu_missing_or_garbage_is_none(tmp_path):
    assert js.read_gpu_load(tmp_path) is None
    assert js.read_gpu_frequency(tmp_path) is None
    put(tmp_path, "sys/devices/gpu.0/load", "not-a-number")
    assert js.read_gpu_load(tmp_path) is None


# --- power -------------------------------------------------------------------------------------------------------


def test_power_rails_from_ina3221(jetson_root):
    rails = {rail.name: rail for rail in js.read_power_rails(jetson_root)}
    assert list(rails) == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    vdd_in = rails["VDD_IN"]
    assert vdd_in.volts == pytest.approx(5.080)
    assert vdd_in.amperes == pytest.approx(1.010)
    assert vdd_in.watts == pytest.approx(5080 * 1010 / 1e6)
    assert rails["VDD_SOC"].watts == pytest.approx(5080 * 286 / 1e6)


def test_power_rails_skip_nc_and_sum_channels_and_unreadable_inputs(tmp_path):
    hwmon = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    put(tmp_path, f"{hwmon}/in1_label", "VDD_IN")
    put(tmp_path, f"{hwmon}/in1_input", "5000")
    put(tmp_path, f"{hwmon}/curr1_input", "2000")
    put(tmp_path, f"{hwmon}/in2_label", "NC")
    put(tmp_path, f"{hwmon}/in2_input", "0")
    put(tmp_path, f"{hwmon}/curr2_input", "0")
    put(tmp_path, f"{hwmon}/in3_label", "VDD_SOC")  # no in3_input / curr3_input
    put(tmp_path, f"{hwmon}/in7_label", "sum of shunt voltages")
    put(tmp_path, f"{hwmon}/in7_input", "12")
    put(tmp_path, f"{hwmon}/curr7_input", "12")
    assert [(r.name, r.watts) for r in js.read_power_rails(tmp_path)] == [("VDD_IN", pytest.approx(10.0))]


def test_power_rails_missing_is_empty(tmp_path):
    assert js.read_power_rails(tmp_path) == []


# --- thermal -----------------------------------------------------------------------------------------------------


def test_temperatures_by_zone_type_without_offline_zones(jetson_root):
    temps = js.read_temperatures(jetson_root)
    assert temps == {
        "cpu-thermal": pytest.approx(47.687),
        "gpu-thermal": pytest.approx(48.625),
        "soc0-thermal": pytest.approx(47.468),
        "soc1-thermal": pytest.approx(48.25),
        "soc2-thermal": pytest.approx(46.718),
        "tj-thermal": pytest.approx(48.625),
    }


def test_repeated_zone_type_gets_the_zone_number(tmp_path):
    put(tmp_path, "sys/class/thermal/thermal_zone0/type", "board-thermal")
    put(tmp_path, "sys/class/thermal/thermal_zone0/temp", "30000")
    put(tmp_path, "sys/class/thermal/thermal_zone10/type", "board-thermal")
    put(tmp_path, "sys/class/thermal/thermal_zone10/temp", "31000")
    put(tmp_path, "sys/class/thermal/thermal_zone2/type", "other")  # no temp file: left out
    assert js.read_temperatures(tmp_path) == {"board-thermal": 30.0, "board-thermal-10": 31.0}


def test_trip_points_fixture_is_below_every_trip(jetson_root):
    assert js.read_trip_exceeded(jetson_root) == {"cpu-thermal": False, "gpu-thermal": False, "tj-thermal": False}


def test_trip_exceeded_uses_lowest_passive_or_hot_trip_only(tmp_path):
    zone = "sys/class/thermal/thermal_zone0"
    put(tmp_path, f"{zone}/type", "cpu-thermal")
    put(tmp_path, f"{zone}/temp", "96000")
    put(tmp_path, f"{zone}/trip_point_0_type", "critical")
    put(tmp_path, f"{zone}/trip_point_0_temp", "90000")  # critical: ignored
    put(tmp_path, f"{zone}/trip_point_1_type", "passive")
    put(tmp_path, f"{zone}/trip_point_1_temp", "99000")
    put(tmp_path, f"{zone}/trip_point_2_type", "hot")
    put(tmp_path, f"{zone}/trip_point_2_temp", "95000")
    only_critical = "sys/class/thermal/thermal_zone1"
    put(tmp_path, f"{only_critical}/type", "gpu-thermal")
    put(tmp_path, f"{only_critical}/temp", "120000")
    put(tmp_path, f"{only_critical}/trip_point_0_type", "critical")
    put(tmp_path, f"{only_critical}/trip_point_0_temp", "105000")
    assert js.lowest_trip_millidegrees(tmp_path / zone) == 95000
    assert js.read_trip_exceeded(tmp_path) == {"cpu-thermal": True}


def test_thermal_missing_is_empty(tmp_path):
    assert js.read_temperatures(tmp_path) == {}
    assert js.read_trip_exceeded(tmp_path) == {}


# --- memory ------------------------------------------------------------------------------------------------------


def test_memory_from_meminfo_in_bytes(jetson_root):
    assert js.read_memory(jetson_root) == js.MemoryInfo(total_bytes=7802880 * 1024, available_bytes=5601296 * 1024)


def test_memory_missing_or_incomplete_is_none(tmp_path):
    assert js.read_memory(tmp_path) is None
    put(tmp_path, "proc/meminfo", "MemTotal:        7802880 kB\nMemFree:         4719508 kB")
    assert js.read_memory(tmp_path) is None


# --- nvpmodel ----------------------------------------------------------------------------------------------------


def test_power_mode_named_from_conf(jetson_root):
    assert js.read_power_mode(jetson_root) == js.PowerMode(id=2, name="MAXN_SUPER")


def test_power_mode_without_conf_keeps_the_id(tmp_path):
    put(tmp_path, "var/lib/nvpmodel/status", "pmode:0000 fmode:cool")
    assert js.read_power_mode(tmp_path) == js.PowerMode(id=0, name=None)


def test_power_mode_id_absent_from_conf_has_no_name(tmp_path, jetson_root):
    put(tmp_path, "var/lib/nvpmodel/status", "pmode:0009")
    put(tmp_path, "etc/nvpmodel.conf", (jetson_root / "etc/nvpmodel.conf").read_text())
    assert js.read_power_mode(tmp_path) == js.PowerMode(id=9, name=None)


def test_power_mode_missing_or_unparsable_status_is_none(tmp_path):
    assert js.read_power_mode(tmp_path) is None
    put(tmp_path, "var/lib/nvpmodel/status", "garbage")
    assert js.read_power_mode(tmp_path) is None
