"""The LED model: prioritised layers, each with a look, rendered to the strip's 8 pixels at a given time.

Nothing here touches hardware or real time. :class:`LedState` reads an injected clock, so tests step time by
hand and the daemon passes ``time.monotonic``. The winning layer is the highest level; within a level a status
source beats a layer set by a request (the appliance's truth over decoration), then the most recent wins. So an
alert is never hidden by activity, and a crashed reporter cannot leave the strip stuck: source layers carry a TTL.
"""

from __future__ import annotations

import colorsys
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

NUM_PIXELS = 8
MAX_SOURCES = 32  # status sources are few; a bound keeps a misbehaving client from growing the state forever

RGB = tuple[int, int, int]
Pixel = tuple[int, int, int, float]  # red, green, blue 0..255 and the APA102 brightness 0.0..1.0
Frame = tuple[Pixel, ...]
OFF: Pixel = (0, 0, 0, 0.0)
DARK: Frame = (OFF,) * NUM_PIXELS

COLORS: dict[str, RGB] = {
    "off": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "orange": (255, 64, 0),
    "amber": (255, 140, 0),
    "yellow": (255, 220, 0),
    "green": (0, 255, 0),
    "cyan": (0, 255, 255),
    "blue": (0, 0, 255),
    "purple": (128, 0, 255),
    "magenta": (255, 0, 255),
    "pink": (255, 64, 128),
}
DEFAULT_BRIGHTNESS = 0.2  # the Blinkt! is glaring at full brightness on a desk


def parse_color(text: str) -> RGB:
    """A colour name from :data:`COLORS` or ``#rrggbb``; the error lists what is accepted."""
    value = text.strip().lower()
    if value in COLORS:
        return COLORS[value]
    if len(value) == 7 and value[0] == "#":
        try:
            return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
        except ValueError:
            pass
    raise ValueError(f"unknown colour {text!r}: use '#rrggbb' or one of {', '.join(COLORS)}")


def format_color(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def pixel(rgb: RGB, brightness: float) -> Pixel:
    """One pixel, normalised so that anything dark is exactly :data:`OFF`."""
    level = round(min(1.0, max(0.0, brightness)), 3)
    return OFF if level == 0.0 or rgb == (0, 0, 0) else (rgb[0], rgb[1], rgb[2], level)


class Level(IntEnum):
    """Layer priorities, highest wins. ``pulse`` holds short success/error animations and error states."""

    IDLE = 0
    MANUAL = 1
    ACTIVITY = 2
    PULSE = 3
    ALERT = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Look:
    """What a layer shows: a pattern, its colour and brightness, and the frame of the ``solid`` pattern."""

    pattern: str
    color: RGB = COLORS["white"]
    brightness: float = DEFAULT_BRIGHTNESS
    period: float | None = None  # seconds per cycle; None takes the pattern's own
    pixels: Frame | None = None  # ``solid`` only: per-pixel colours (None fills the strip with ``color``)


# --- patterns: (look, seconds since the layer started, period) -> frame ---------------------------------------


def _fill(look: Look, level: float = 1.0) -> Frame:
    return (pixel(look.color, look.brightness * level),) * NUM_PIXELS


def _solid(look: Look, t: float, period: float) -> Frame:
    return look.pixels if look.pixels is not None else _fill(look)


def _blink(look: Look, t: float, period: float) -> Frame:
    return _fill(look) if (t / period) % 1.0 < 0.5 else DARK


def _breathe(look: Look, t: float, period: float) -> Frame:
    return _fill(look, 0.5 - 0.5 * math.cos(2 * math.pi * t / period))


def _heartbeat(look: Look, t: float, period: float) -> Frame:
    phase = (t / period) % 1.0
    return _fill(look) if phase < 0.1 or 0.2 <= phase < 0.3 else DARK


def _pulse(look: Look, t: float, period: float) -> Frame:
    return _fill(look, math.sin(math.pi * ((t / period) % 1.0)) ** 2)


def _scanner(look: Look, t: float, period: float) -> Frame:
    """The Larson scanner: one bright eye bouncing end to end with a soft edge."""
    phase = (t / period) % 1.0
    eye = (NUM_PIXELS - 1) * (1.0 - abs(2.0 * phase - 1.0))
    return tuple(pixel(look.color, look.brightness * max(0.0, 1.0 - abs(i - eye) / 1.5)) for i in range(NUM_PIXELS))


def _rainbow(look: Look, t: float, period: float) -> Frame:
    frame = []
    for i in range(NUM_PIXELS):
        r, g, b = colorsys.hsv_to_rgb((t / period + i / NUM_PIXELS) % 1.0, 1.0, 1.0)
        frame.append(pixel((round(r * 255), round(g * 255), round(b * 255)), look.brightness))
    return tuple(frame)


class Pattern(NamedTuple):
    render: Callable[[Look, float, float], Frame]
    period: float
    animated: bool


PATTERNS: dict[str, Pattern] = {
    "solid": Pattern(_solid, 1.0, animated=False),
    "blink": Pattern(_blink, 0.5, animated=True),
    "breathe": Pattern(_breathe, 3.0, animated=True),
    "heartbeat": Pattern(_heartbeat, 1.2, animated=True),
    "pulse": Pattern(_pulse, 0.75, animated=True),
    "scanner": Pattern(_scanner, 1.6, animated=True),
    "larson": Pattern(_scanner, 1.6, animated=True),
    "rainbow": Pattern(_rainbow, 4.0, animated=True),
}
# The patterns a client may name, with the colour each takes when none is given (rainbow ignores it).
NAMED_PATTERNS: dict[str, RGB] = {
    "rainbow": COLORS["white"],
    "scanner": COLORS["red"],
    "larson": COLORS["red"],
    "breathe": COLORS["blue"],
    "heartbeat": COLORS["red"],
    "blink": COLORS["white"],
}


def render(look: Look, t: float) -> Frame:
    pattern = PATTERNS[look.pattern]
    return pattern.render(look, max(0.0, t), look.period or pattern.period)


# --- the one table: status states -> level and look -------------------------------------------------------------


@dataclass(frozen=True)
class SignalState:
    level: Level
    look: Look
    meaning: str
    ttl: float | None = None  # used when a signal names no TTL


def _look(pattern: str, color: str, brightness: float, period: float | None = None) -> Look:
    return Look(pattern, COLORS[color], brightness, period)


SIGNAL_STATES: dict[str, SignalState] = {
    "alert": SignalState(Level.ALERT, _look("blink", "red", 0.5), "something needs attention now"),
    "service_down": SignalState(Level.ALERT, _look("blink", "red", 0.5), "a required systemd unit is not active"),
    "crush_unreachable": SignalState(
        Level.ALERT, _look("blink", "orange", 0.5, 1.0), "crush, the inference node, does not answer"
    ),
    "throttled": SignalState(
        Level.ALERT, _look("blink", "yellow", 0.5, 1.0), "under-voltage, throttling or over the temperature limit"
    ),
    "alert_firing": SignalState(Level.ALERT, _look("blink", "magenta", 0.5), "Prometheus has a firing alert"),
    "error": SignalState(Level.PULSE, _look("heartbeat", "red", 0.4), "a task failed", ttl=10.0),
    "success": SignalState(Level.PULSE, _look("pulse", "green", 0.4), "a task succeeded", ttl=1.5),
    "reminder": SignalState(Level.PULSE, _look("breathe", "white", 0.4), "a reminder is due", ttl=60.0),
    "inference": SignalState(Level.ACTIVITY, _look("scanner", "cyan", 0.3), "the model is generating"),
    "tool_call": SignalState(Level.ACTIVITY, _look("scanner", "purple", 0.3), "a tool call is in progress"),
    "busy": SignalState(Level.ACTIVITY, _look("breathe", "amber", 0.3), "working on something"),
    "idle": SignalState(Level.IDLE, _look("solid", "blue", 0.04), "up and waiting"),
}


# --- layers and the state ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    key: str  # "manual", "pulse", "flash", or "source:<name>"
    level: Level
    look: Look
    started: float  # clock time the animation is phased from
    seq: int  # recency among layers of one level
    expires_at: float | None = None
    source: str | None = None  # set for status signals
    state: str | None = None  # the signal state, or what the request showed ("progress", "rainbow", ...)
    detail: str = ""

    def expires_in(self, now: float) -> float | None:
        return None if self.expires_at is None else max(0.0, self.expires_at - now)


def source_key(source: str) -> str:
    return f"source:{source}"


class LedState:
    """The layers currently set, and what they render to at the clock's current time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._layers: dict[str, Layer] = {}
        self._seq = itertools.count(1)

    def now(self) -> float:
        return self._clock()

    def put(
        self,
        key: str,
        level: Level,
        look: Look,
        *,
        ttl: float | None = None,
        source: str | None = None,
        state: str | None = None,
        detail: str = "",
        restart: bool = False,
    ) -> Layer:
        """Set a layer. Re-setting the same look keeps its phase and recency (a refresh only extends the TTL)."""
        now = self._clock()
        old = self._live(key, now)
        kept = old if old and not restart and (old.level, old.look, old.state) == (level, look, state) else None
        layer = Layer(
            key=key,
            level=level,
            look=look,
            started=kept.started if kept else now,
            seq=kept.seq if kept else next(self._seq),
            expires_at=None if ttl is None else now + ttl,
            source=source,
            state=state,
            detail=detail,
        )
        self._layers[key] = layer
        return layer

    def signal(self, source: str, state: str, ttl: float | None = None, detail: str = "") -> Layer:
        spec = SIGNAL_STATES.get(state)
        if spec is None:
            raise ValueError(f"unknown state {state!r}; known: {', '.join(SIGNAL_STATES)}")
        key = source_key(source)
        sources = [layer for layer in self.layers() if layer.source is not None]
        if key not in self._layers and len(sources) >= MAX_SOURCES:
            raise ValueError(f"too many signal sources (limit {MAX_SOURCES}); unsignal one first")
        return self.put(
            key, spec.level, spec.look, ttl=spec.ttl if ttl is None else ttl, source=source, state=state, detail=detail
        )

    def remove(self, key: str) -> bool:
        return self._layers.pop(key, None) is not None

    def unsignal(self, source: str) -> bool:
        return self.remove(source_key(source))

    def clear_requests(self) -> list[str]:
        """Remove every layer a request set (manual, pulse, flash); status signals stay."""
        removed = [key for key, layer in self._layers.items() if layer.source is None]
        for key in removed:
            del self._layers[key]
        return removed

    def layers(self) -> list[Layer]:
        """The live layers, winner first; expired ones are dropped here."""
        now = self._clock()
        for key in [key for key, layer in self._layers.items() if self._expired(layer, now)]:
            del self._layers[key]
        return sorted(self._layers.values(), key=lambda la: (la.level, la.source is not None, la.seq), reverse=True)

    def winner(self) -> Layer | None:
        layers = self.layers()
        return layers[0] if layers else None

    def frame(self) -> Frame:
        layer = self.winner()
        return DARK if layer is None else render(layer.look, self._clock() - layer.started)

    def manual_pixels(self) -> Frame:
        """The manual layer's frame when it is a still one (``set`` paints over it), else all off."""
        layer = self._live("manual", self._clock())
        if layer is None or layer.look.pattern != "solid":
            return DARK
        return render(layer.look, 0.0)

    def next_change(self, frame_interval: float) -> float | None:
        """Seconds until the frame may change: a frame interval while animating, else the next expiry, or never."""
        layers = self.layers()
        now = self._clock()
        waits = [la.expires_at - now for la in layers if la.expires_at is not None]
        if layers and PATTERNS[layers[0].look.pattern].animated:
            waits.append(frame_interval)
        return max(0.0, min(waits)) if waits else None

    def _live(self, key: str, now: float) -> Layer | None:
        layer = self._layers.get(key)
        return None if layer is None or self._expired(layer, now) else layer

    @staticmethod
    def _expired(layer: Layer, now: float) -> bool:
        return layer.expires_at is not None and now >= layer.expires_at
