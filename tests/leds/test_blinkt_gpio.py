"""The blinkt backend through the real ``blinkt`` package, on a simulated GPIO header that decodes the APA102 frames.

Two paths to the pins, both with the packages the Pi gets (the versions pinned in claw's ``pi`` extra):

* ``RPi.GPIO``: ``blinkt`` over a stand-in ``RPi.GPIO`` module (:func:`tests.doubles.gpio.rpi_gpio_module`);
* ``rpi-lgpio``: ``blinkt`` over the real ``rpi-lgpio`` package (the Pi 5's ``RPi.GPIO``) over a stand-in ``lgpio``
  (:func:`tests.doubles.gpio.lgpio_module`): the only part simulated is the gpiochip.

For every state the daemon can show (each status signal, pattern and request) the frames rendered over time are
shown through :class:`BlinktBackend`, and what the strip decodes from the data/clock lines must be each pixel's
colour and 5-bit brightness.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.metadata
import json
import logging
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from claw.leds.backends import BackendError, BlinktBackend, open_backend
from claw.leds.client import LedClient
from claw.leds.daemon import LedDaemon, LedService
from claw.leds.state import NAMED_PATTERNS, NUM_PIXELS, SIGNAL_STATES, Frame, LedState

from tests.doubles.gpio import (
    CLOCK_PIN,
    DATA_PIN,
    Apa102Error,
    Header,
    Strip,
    decode,
    lgpio_module,
    rpi_gpio_module,
    shown,
)
from tests.leds.conftest import FakeClock

REPO = Path(__file__).resolve().parents[2]
PATHS = ("RPi.GPIO", "rpi-lgpio")
MODULES = ("blinkt", "RPi", "RPi.GPIO", "lgpio")
PI5_REVISION = "d04170"  # Raspberry Pi 5 Model B 8GB: what rpi-lgpio reads from the device tree on the board
PI5_CHIP = 4  # /dev/gpiochip4, the RP1's header GPIO
DARK_STRIP = ((0, 0, 0, 0),) * NUM_PIXELS
# Seconds since the request: both halves of every blink, the heartbeat's beats, the scanner's and the rainbow's travel.
SAMPLES = (0.0, 0.05, 0.15, 0.3, 0.45, 0.62, 0.8, 1.1, 1.45, 2.2, 3.3)


def pi_extra_pins() -> dict[str, str]:
    """claw's ``pi`` extra, read from pyproject.toml without tomllib (these tests also run on Python 3.10)."""
    extra = re.search(r"^pi = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert extra, "pyproject.toml has no one-line 'pi' extra"
    return dict(pin.strip(' "').split("==") for pin in extra.group(1).split(","))


def installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"{distribution} is not installed: the dev venv gets claw's 'pi' packages without their dependencies "
            "(pip install --no-deps -c requirements/constraints.txt blinkt rpi-lgpio)"
        )


def wire(frame: Frame) -> Strip:
    """What the strip must receive for a frame: each pixel's colour and its brightness as APA102's 5 bits."""
    return tuple((red, green, blue, math.floor(31 * brightness)) for red, green, blue, brightness in frame)


@dataclass
class Bench:
    """One simulated Pi: the header the strip is on, the GPIO path in use, and what the test installed."""

    path: str
    header: Header
    blinkt: ModuleType
    gpio: ModuleType  # the RPi.GPIO module blinkt is using
    lgpio: ModuleType | None

    def backend(self) -> BlinktBackend:
        backend = BlinktBackend()  # imports blinkt itself, as the daemon does
        assert backend._blinkt is self.blinkt
        assert self.header.take() == DARK_STRIP  # opening claims the pins with a dark frame
        return backend


@pytest.fixture
def isolated_modules() -> Iterator[None]:
    """blinkt and RPi.GPIO keep module state (pins set up, the chip handle): each test imports them afresh."""
    saved = {name: sys.modules.pop(name) for name in MODULES if name in sys.modules}
    try:
        yield
    finally:
        blinkt = sys.modules.get("blinkt")
        if blinkt is not None:
            atexit.unregister(blinkt._exit)  # registered by the first show(); it would drive the double at exit
        for name in MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def install_path(path: str, header: Header, monkeypatch: pytest.MonkeyPatch, **lgpio_options: object) -> ModuleType:
    """Put the GPIO layer for ``path`` under ``blinkt``; returns the stand-in lgpio (rpi-lgpio) or RPi.GPIO."""
    if path == "RPi.GPIO":
        package, gpio = rpi_gpio_module(header)
        sys.modules["RPi"], sys.modules["RPi.GPIO"] = package, gpio
        return gpio
    installed("rpi-lgpio")
    lgpio = lgpio_module(header, chip=PI5_CHIP, **lgpio_options)
    sys.modules["lgpio"] = lgpio
    monkeypatch.setenv("RPI_LGPIO_REVISION", PI5_REVISION)
    monkeypatch.setenv("RPI_LGPIO_CHIP", str(PI5_CHIP))
    return lgpio


@pytest.fixture(params=PATHS)
def bench(request: pytest.FixtureRequest, isolated_modules: None, monkeypatch: pytest.MonkeyPatch) -> Bench:
    header = Header()
    stand_in = install_path(request.param, header, monkeypatch)
    installed("blinkt")
    blinkt = importlib.import_module("blinkt")
    # The strip is simulated, so blinkt's half-microsecond waits between clock edges are not needed.
    monkeypatch.setattr(blinkt, "time", SimpleNamespace(sleep=lambda seconds: None))
    gpio = sys.modules["RPi.GPIO"]
    if request.param == "rpi-lgpio":
        files = importlib.metadata.files("rpi-lgpio") or []
        ours = {Path(str(f.locate())).resolve() for f in files if str(f).endswith(".py")}
        assert Path(gpio.__file__).resolve() in ours, f"RPi.GPIO comes from {gpio.__file__}, not rpi-lgpio"
    return Bench(request.param, header, blinkt, gpio, stand_in if request.param == "rpi-lgpio" else None)


# --- every state the daemon can show -----------------------------------------------------------------------------


def requests() -> dict[str, dict]:
    """Every request that changes the strip, each status signal and named pattern included."""
    cases: dict[str, dict] = {
        f"signal {state}": {"op": "signal", "source": "t", "state": state} for state in SIGNAL_STATES
    }
    cases |= {f"pattern {name}": {"op": "pattern", "name": name} for name in NAMED_PATTERNS}
    cases |= {
        "pattern scanner green": {"op": "pattern", "name": "scanner", "color": "green", "brightness": 1.0},
        "pulse success": {"op": "pulse", "kind": "success"},
        "pulse error": {"op": "pulse", "kind": "error", "seconds": 3},
        "flash": {"op": "flash"},
        "flash pink 5 Hz": {"op": "flash", "color": "pink", "hz": 5, "brightness": 1.0},
        "set one pixel": {"op": "set", "color": "#123456", "brightness": 1.0, "first": 2, "last": 2},
        "set all": {"op": "set", "color": "purple", "brightness": 0.65},
        "progress 0": {"op": "progress", "percent": 0},
        "progress 37": {"op": "progress", "percent": 37, "color": "#ff8001", "brightness": 0.9},
        "progress 100": {"op": "progress", "percent": 100},
        "nothing set": {"op": "get"},
        "cleared": {"op": "clear"},
    }
    return cases


REQUESTS = requests()


@pytest.mark.parametrize("case", list(REQUESTS))
def test_every_state_reaches_the_strip_as_its_colours(bench, case):
    clock = FakeClock()
    service = LedService(LedState(clock), "blinkt")
    answer = service.handle_line(json.dumps(REQUESTS[case]).encode() + b"\n")
    assert answer["ok"], answer
    backend = bench.backend()
    frames = []
    start = clock.now
    for offset in SAMPLES:
        clock.now = start + offset
        frame = service.state.frame()
        backend.show(frame)
        assert bench.header.take() == wire(frame), f"{case} at +{offset}s"
        frames.append(frame)
    if service.state.winner() is not None and service.state.winner().look.pattern != "solid":
        assert len(set(frames)) > 1, "an animated state was sampled at one frame only"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"op": "signal", "source": "t", "state": "idle"}, ((0, 0, 255, 1),) * 8),  # blue at 0.04
        ({"op": "signal", "source": "t", "state": "alert"}, ((255, 0, 0, 15),) * 8),  # red blink at 0.5, lit half
        ({"op": "progress", "percent": 50}, ((0, 255, 0, 6),) * 4 + ((0, 0, 0, 0),) * 4),  # green at 0.2
        (
            {"op": "set", "color": "#123456", "brightness": 1.0, "first": 2, "last": 3},
            ((0, 0, 0, 0),) * 2 + ((0x12, 0x34, 0x56, 31),) * 2 + ((0, 0, 0, 0),) * 4,
        ),
    ],
    ids=["idle", "alert", "progress", "set"],
)
def test_known_states_decode_to_known_pixels(bench, request_, expected):
    service = LedService(LedState(FakeClock()), "blinkt")
    assert service.handle_line(json.dumps(request_).encode())["ok"]
    bench.backend().show(service.state.frame())
    assert bench.header.take() == expected


def test_close_and_exit_leave_the_strip_dark_and_the_pins_free(bench):
    backend = bench.backend()
    backend.show(((255, 255, 255, 1.0),) * NUM_PIXELS)
    assert bench.header.take() == ((255, 255, 255, 31),) * NUM_PIXELS
    backend.close()
    assert shown(bench.header.take()) == DARK_STRIP
    assert set(bench.header.outputs) == {DATA_PIN, CLOCK_PIN}
    bench.blinkt._exit()  # what blinkt registers with atexit: clear, show, GPIO.cleanup()
    assert shown(bench.header.take()) == DARK_STRIP
    assert bench.header.outputs == {}
    if bench.lgpio is not None:
        assert (bench.lgpio.opened, bench.lgpio.closed) == ([PI5_CHIP], [PI5_CHIP])


@pytest.mark.anyio
async def test_the_daemon_drives_the_strip_from_its_worker_thread(bench, sock_dir):
    backend = bench.backend()
    daemon = LedDaemon(LedService(LedState(FakeClock()), backend.name), backend, sock_dir / "leds.sock")
    client = LedClient(daemon.socket_path, timeout=2.0)

    async def shown_after(count: int) -> Strip:
        for _ in range(200):
            if daemon.frames_shown >= count:
                return bench.header.take()
            await asyncio.sleep(0.01)
        raise AssertionError(f"the daemon showed {daemon.frames_shown} frames, expected {count}")

    async with daemon:
        assert await shown_after(1) == DARK_STRIP
        await client.request("signal", source="t", state="idle")
        assert await shown_after(2) == ((0, 0, 255, 1),) * NUM_PIXELS
        await client.request("set", color="red", brightness=1.0, first=7, last=7)  # manual outranks idle
        assert await shown_after(3) == ((0, 0, 0, 0),) * 7 + ((255, 0, 0, 31),)
        await client.request("clear")
        assert await shown_after(4) == ((0, 0, 255, 1),) * NUM_PIXELS  # idle again
    assert shown(bench.header.take()) == DARK_STRIP  # stopping the daemon closes the backend


# --- failures on the Pi's own GPIO path --------------------------------------------------------------------------


def test_rpi_lgpio_off_a_pi_is_a_backend_error(isolated_modules, monkeypatch):
    if Path("/proc/device-tree/system/linux,revision").exists():
        pytest.skip("this machine has a Raspberry Pi device tree")
    install_path("rpi-lgpio", Header(), monkeypatch)
    monkeypatch.delenv("RPI_LGPIO_REVISION")
    with pytest.raises(BackendError, match=r"RuntimeError: This module can only be run on a Raspberry Pi!"):
        open_backend("blinkt")


def test_a_gpiochip_the_daemon_cannot_open_falls_back_to_simulated(isolated_modules, monkeypatch, caplog):
    header = Header()
    install_path("rpi-lgpio", header, monkeypatch, openable=False)
    with pytest.raises(BackendError, match="blinkt cannot drive the strip: error: can not open gpiochip"):
        open_backend("blinkt")
    with caplog.at_level(logging.WARNING, logger="claw.leds.backends"):
        backend = open_backend("auto", detect=lambda: True)
    assert backend.name == "simulated"
    assert "can not open gpiochip; using the simulated backend" in caplog.text
    assert header.bits == []


def test_the_packages_driven_are_the_pi_extras_pins():
    pins = pi_extra_pins()
    assert {name: installed(name) for name in ("blinkt", "rpi-lgpio")} == {
        name: pins[name] for name in ("blinkt", "rpi-lgpio")
    }


# --- the decoder rejects what the strip would not display --------------------------------------------------------


@pytest.fixture
def transmission(isolated_modules, monkeypatch) -> list[int]:
    """The bits of one real blinkt.show() of a known frame."""
    header = Header()
    install_path("RPi.GPIO", header, monkeypatch)
    installed("blinkt")
    blinkt = importlib.import_module("blinkt")
    monkeypatch.setattr(blinkt, "time", SimpleNamespace(sleep=lambda seconds: None))
    for index in range(NUM_PIXELS):
        blinkt.set_pixel(index, 10 * index, 255 - index, 128 + index, index / 7)
    blinkt.show()
    return header.bits


def test_the_decoder_reads_a_real_transmission(transmission):
    assert decode(transmission) == tuple((10 * i, 255 - i, 128 + i, math.floor(31 * i / 7)) for i in range(NUM_PIXELS))


def flip(bits: list[int], index: int) -> list[int]:
    return [*bits[:index], 1 - bits[index], *bits[index + 1 :]]


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda bits: flip(bits, 7), "start frame"),
        (lambda bits: bits[1:], "start frame"),  # 31 zeros: the first pixel's header would be read one bit late
        (lambda bits: flip(bits, 32 + 32 * 3 + 1), "pixel 3: header bits 101"),
        (lambda bits: bits[: 32 + 32 * 5 + 20], "pixel 5: the transmission ends after 20"),
        (lambda bits: bits[: 32 + 32 * 8 + 3], "end frame: 3 clock edges"),
        (lambda bits: flip(bits, len(bits) - 1), "end frame: mixed bits"),
        (lambda bits: bits + [1, 1, 1, 0, 0, 0, 0, 0] * 4, "end frame: mixed bits"),  # a ninth pixel
        (lambda bits: [], "start frame"),
    ],
    ids=["start-bit", "short-start", "pixel-header", "truncated", "short-end", "end-bit", "ninth-pixel", "empty"],
)
def test_the_decoder_rejects_a_corrupted_frame(transmission, corrupt, message):
    with pytest.raises(Apa102Error, match=message):
        decode(corrupt(list(transmission)))


def test_a_header_with_nothing_clocked_out_has_no_frame():
    with pytest.raises(Apa102Error, match="nothing was clocked out"):
        Header().take()
