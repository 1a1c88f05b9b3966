"""Backends: the simulated strip's JSON mirror, backend selection and auto-detection.

What the blinkt backend puts on the wire is tested with the real ``blinkt`` and ``rpi-lgpio`` packages on a
simulated GPIO header in test_blinkt_gpio.py; here a hand-made ``blinkt`` stands in only where the selection logic
is under test.
"""

from __future__ import annotations

import json
import logging
import sys
from types import SimpleNamespace

import pytest
from claw.leds.backends import BackendError, BlinktBackend, SimulatedBackend, is_raspberry_pi, open_backend
from claw.leds.state import DARK

FRAME = ((255, 0, 0, 0.2),) + ((0, 0, 0, 0.0),) * 6 + ((0, 0, 255, 1.0),)


def fake_blinkt(calls: list) -> SimpleNamespace:
    return SimpleNamespace(
        set_clear_on_exit=lambda value=True: calls.append(("clear_on_exit", value)),
        set_pixel=lambda *args: calls.append(("set_pixel", *args)),
        show=lambda: calls.append(("show",)),
        clear=lambda: calls.append(("clear",)),
    )


def test_simulated_backend_mirrors_frames_into_a_json_file(tmp_path):
    backend = SimulatedBackend(tmp_path / "state.json")
    backend.show(FRAME)
    assert backend.frame == FRAME
    written = json.loads((tmp_path / "state.json").read_text())
    assert written["pixels"] == [list(p) for p in FRAME]
    backend.close()
    assert json.loads((tmp_path / "state.json").read_text())["pixels"] == [list(p) for p in DARK]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # the temporary file was renamed


def test_blinkt_backend_without_the_library_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "blinkt", None)  # import blinkt now raises ImportError
    with pytest.raises(BackendError, match=r"blinkt cannot drive the strip: .*blinkt.*install claw's 'pi' extra"):
        open_backend("blinkt")


def test_blinkt_backend_reports_gpio_failures():
    def no_gpio() -> None:
        raise RuntimeError("Cannot determine SOC peripheral base address")

    broken = SimpleNamespace(set_clear_on_exit=lambda value=True: None, set_pixel=lambda *a: None, show=no_gpio)
    with pytest.raises(BackendError, match="RuntimeError: Cannot determine SOC peripheral base address"):
        BlinktBackend(broken)


def test_auto_picks_simulated_off_the_pi(tmp_path):
    backend = open_backend("auto", tmp_path / "s.json", detect=lambda: False, blinkt=pytest.fail)
    assert isinstance(backend, SimulatedBackend)
    assert backend.state_file == tmp_path / "s.json"


def test_auto_falls_back_to_simulated_when_blinkt_fails_on_a_pi(caplog):
    def broken() -> BlinktBackend:
        raise BackendError("blinkt cannot drive the strip: RuntimeError: no access to /dev/gpiochip4")

    with caplog.at_level(logging.WARNING, logger="claw.leds.backends"):
        backend = open_backend("auto", detect=lambda: True, blinkt=broken)
    assert backend.name == "simulated"
    assert "no access to /dev/gpiochip4; using the simulated backend" in caplog.text


def test_auto_uses_blinkt_on_a_pi():
    calls: list = []
    backend = open_backend("auto", detect=lambda: True, blinkt=lambda: BlinktBackend(fake_blinkt(calls)))
    assert backend.name == "blinkt"


@pytest.mark.parametrize(
    ("model", "chip", "expected"),
    [
        ("Raspberry Pi 5 Model B Rev 1.0\x00", False, True),
        ("Raspberry Pi 4 Model B Rev 1.5\x00", False, False),
        ("NVIDIA Jetson Orin Nano Developer Kit\x00", False, False),
        (None, True, True),
        (None, False, False),
    ],
)
def test_raspberry_pi_5_detection(tmp_path, model, chip, expected):
    model_file = tmp_path / "model"
    if model is not None:
        model_file.write_text(model)
    gpiochip = tmp_path / "gpiochip4"
    if chip:
        gpiochip.touch()
    assert is_raspberry_pi(model_file, gpiochip) is expected


def test_an_unknown_backend_is_refused():
    with pytest.raises(BackendError, match="unknown backend 'neopixel'; known: auto, blinkt, simulated"):
        open_backend("neopixel")
