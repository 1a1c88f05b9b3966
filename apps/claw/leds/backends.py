"""Where frames go: the Blinkt! on a Raspberry Pi, or a simulated strip anywhere else.

``blinkt`` (and through it ``RPi.GPIO``, which ``rpi-lgpio`` provides on the Pi 5) is imported only when the
blinkt backend is opened, so the rest of claw runs on machines without GPIO. The simulated backend can mirror
each frame atomically into a JSON file, so tests and other processes can see what the strip would show.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Protocol

from claw.leds.state import DARK, Frame

log = logging.getLogger("claw.leds.backends")

BACKENDS = ("auto", "blinkt", "simulated")
PI_MODEL = Path("/proc/device-tree/model")
PI5_GPIOCHIP = Path("/dev/gpiochip4")  # the RP1's header GPIO on a Pi 5


class BackendError(RuntimeError):
    """The requested backend cannot drive a strip here; the message says why."""


class Backend(Protocol):
    name: str

    def show(self, frame: Frame) -> None:
        """Display one frame of 8 pixels."""

    def close(self) -> None:
        """Turn every pixel off and release the strip."""


class SimulatedBackend:
    """Keeps the last frame in memory and, given a path, writes it there as JSON (temporary file + rename)."""

    name = "simulated"

    def __init__(self, state_file: Path | None = None) -> None:
        self.state_file = state_file
        self.frame: Frame = DARK
        self.shows = 0

    def show(self, frame: Frame) -> None:
        self.frame = frame
        self.shows += 1
        if self.state_file is not None:
            payload = {"backend": self.name, "pixels": [list(p) for p in frame], "updated": time.time()}
            tmp = self.state_file.with_name(f".{self.state_file.name}.tmp")
            tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
            tmp.replace(self.state_file)

    def close(self) -> None:
        self.show(DARK)


class BlinktBackend:
    """Pimoroni Blinkt! (8 APA102 pixels on GPIO 23 data / 24 clock) through the ``blinkt`` library."""

    name = "blinkt"

    def __init__(self, module: ModuleType | None = None) -> None:
        try:
            if module is None:
                import blinkt as module  # lazy: RPi.GPIO exists only on the Pi
            module.set_clear_on_exit(True)  # a crash still leaves the strip dark
            self._blinkt = module
            self.show(DARK)  # the first show claims GPIO 23/24: fail now, not in the render loop
        except ImportError as err:
            raise BackendError(f"blinkt cannot drive the strip: {err} (install claw's 'pi' extra)") from None
        except Exception as err:  # RuntimeError or lgpio errors: not a Pi, or no access to /dev/gpiochip*
            raise BackendError(f"blinkt cannot drive the strip: {type(err).__name__}: {err}") from None

    def show(self, frame: Frame) -> None:
        for index, (red, green, blue, brightness) in enumerate(frame):
            self._blinkt.set_pixel(index, red, green, blue, brightness)
        self._blinkt.show()

    def close(self) -> None:
        self._blinkt.clear()
        self._blinkt.show()


def is_raspberry_pi(model_file: Path = PI_MODEL, gpiochip: Path = PI5_GPIOCHIP) -> bool:
    """A Pi 5's header GPIO is present: its GPIO chip exists, or the device tree names a Raspberry Pi 5."""
    if gpiochip.exists():
        return True
    try:
        return "Raspberry Pi 5" in model_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def open_backend(
    kind: str,
    state_file: Path | None = None,
    *,
    detect: Callable[[], bool] = is_raspberry_pi,
    blinkt: Callable[[], Backend] = BlinktBackend,
) -> Backend:
    """Open ``blinkt``, ``simulated``, or ``auto``: blinkt on a Pi where it imports, else simulated (logged)."""
    if kind == "simulated":
        return SimulatedBackend(state_file)
    if kind == "blinkt":
        return blinkt()
    if kind != "auto":
        raise BackendError(f"unknown backend {kind!r}; known: {', '.join(BACKENDS)}")
    if not detect():
        log.info("no Raspberry Pi GPIO found: using the simulated backend")
        return SimulatedBackend(state_file)
    try:
        backend = blinkt()
    except BackendError as err:
        log.warning("%s; using the simulated backend", err)
        return SimulatedBackend(state_file)
    log.info("driving the Blinkt! on GPIO 23/24")
    return backend
