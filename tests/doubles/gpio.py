"""A simulated Raspberry Pi GPIO header with a Blinkt! on it: the strip's APA102 bit stream, decoded.

The Blinkt! is 8 APA102 pixels on BCM GPIO 23 (data) and 24 (clock). Software bit-bangs them: on each clock
rising edge the strip samples the data line. One transmission is

* a start frame of 32 zero bits,
* per pixel a 32-bit word: ``0b111`` and a 5-bit global brightness, then blue, green and red bytes (MSB first),
* an end frame: at least ``NUM_PIXELS / 2`` more clock edges so the last pixel latches (all zeros or all ones).

:class:`Header` records the pins and samples the data line on every rising edge of the clock; :meth:`Header.take`
decodes what was clocked out since the last call (one ``blinkt.show()``) with :func:`decode`, which raises
:class:`Apa102Error` on anything the strip would not accept. Two module doubles drive the header:

* :func:`rpi_gpio_module`: a stand-in for ``RPi.GPIO`` (what ``blinkt`` imports), for the legacy path;
* :func:`lgpio_module`: a stand-in for ``lgpio``, the C extension under the real ``rpi-lgpio`` package (the Pi 5's
  ``RPi.GPIO``), so that package's own code runs and only the gpiochip ioctl boundary is simulated.

Nothing here sleeps or touches hardware; the tests install these modules into ``sys.modules``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType

DATA_PIN = 23
CLOCK_PIN = 24
NUM_PIXELS = 8
START_BITS = 32
WORD_BITS = 32

Word = tuple[int, int, int, int]  # red, green, blue 0..255 and the 5-bit global brightness 0..31
Strip = tuple[Word, ...]


class Apa102Error(ValueError):
    """The bits clocked out are not a frame an 8-pixel APA102 strip would display; the message says where."""


def _number(bits: Sequence[int]) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | bit
    return value


def decode(bits: Sequence[int], num_pixels: int = NUM_PIXELS) -> Strip:
    """One transmission's bits (sampled on clock rising edges) -> each pixel's (red, green, blue, brightness)."""
    start = list(bits[:START_BITS])
    if len(start) < START_BITS or any(start):
        raise Apa102Error(f"start frame: expected {START_BITS} zero bits, got {''.join(map(str, start))!r}")
    pixels = []
    position = START_BITS
    for index in range(num_pixels):
        word = list(bits[position : position + WORD_BITS])
        if len(word) < WORD_BITS:
            raise Apa102Error(f"pixel {index}: the transmission ends after {len(word)} of its {WORD_BITS} bits")
        if word[:3] != [1, 1, 1]:
            raise Apa102Error(f"pixel {index}: header bits {''.join(map(str, word[:3]))}, expected 111")
        brightness, blue, green, red = (
            _number(word[3:8]),
            _number(word[8:16]),
            _number(word[16:24]),
            _number(word[24:32]),
        )
        pixels.append((red, green, blue, brightness))
        position += WORD_BITS
    end = list(bits[position:])
    needed = math.ceil(num_pixels / 2)
    if len(end) < needed:
        raise Apa102Error(f"end frame: {len(end)} clock edges, the last pixel needs at least {needed} to latch")
    if len(set(end)) > 1:
        raise Apa102Error("end frame: mixed bits after the last pixel (data for a pixel the strip does not have?)")
    return tuple(pixels)


def shown(strip: Strip) -> tuple[tuple[int, int, int, int], ...]:
    """What each pixel looks like: any pixel with no colour or no brightness is dark, (0, 0, 0, 0)."""
    return tuple((0, 0, 0, 0) if word[3] == 0 or word[:3] == (0, 0, 0) else word for word in strip)


class Header:
    """The header's pins: their direction and level; the data line sampled on each clock rising edge."""

    def __init__(self, data_pin: int = DATA_PIN, clock_pin: int = CLOCK_PIN) -> None:
        self.data_pin = data_pin
        self.clock_pin = clock_pin
        self.outputs: dict[int, int] = {}  # pin -> level, for pins claimed as outputs
        self.inputs: set[int] = set()
        self.bits: list[int] = []
        self.frames: list[Strip] = []  # every transmission taken so far, decoded

    def claim_output(self, pin: int, level: int = 0) -> None:
        self.inputs.discard(pin)
        self.outputs[pin] = int(bool(level))

    def claim_input(self, pin: int) -> None:
        self.outputs.pop(pin, None)
        self.inputs.add(pin)

    def free(self, pin: int) -> None:
        self.outputs.pop(pin, None)
        self.inputs.discard(pin)

    def level(self, pin: int) -> int:
        return self.outputs.get(pin, 0)

    def write(self, pin: int, value: object) -> None:
        if pin not in self.outputs:
            raise RuntimeError(f"GPIO {pin} is not set up as an output")
        level = int(bool(value))
        rising = pin == self.clock_pin and self.outputs[pin] == 0 and level == 1
        self.outputs[pin] = level
        if rising and self.data_pin in self.outputs:
            self.bits.append(self.outputs[self.data_pin])

    def take(self) -> Strip:
        """Decode the bits clocked out since the last take: one transmission, all of it."""
        bits, self.bits = self.bits, []
        if not bits:
            raise Apa102Error("nothing was clocked out")
        strip = decode(bits)
        self.frames.append(strip)
        return strip


# --- RPi.GPIO (the API blinkt calls), drawing straight on the header ---------------------------------------------


def rpi_gpio_module(header: Header) -> tuple[ModuleType, ModuleType]:
    """A minimal ``RPi.GPIO`` over ``header`` (BCM numbering only): the ``RPi`` package and its ``GPIO`` module."""
    gpio = ModuleType("RPi.GPIO")
    gpio.BCM, gpio.BOARD, gpio.OUT, gpio.IN, gpio.LOW, gpio.HIGH = 11, 10, 0, 1, 0, 1
    gpio.mode = None
    gpio.warnings = True

    def setmode(mode: int) -> None:
        if mode != gpio.BCM:
            raise ValueError("the simulated header speaks BCM numbering only")
        gpio.mode = mode

    def setwarnings(value: bool) -> None:
        gpio.warnings = value

    def setup(channel: int, direction: int, initial: int = 0) -> None:
        if gpio.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
        if direction == gpio.OUT:
            header.claim_output(channel, initial)
        else:
            header.claim_input(channel)

    def output(channel: int, value: object) -> None:
        if gpio.mode is None or channel not in header.outputs:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        header.write(channel, value)

    def cleanup() -> None:
        for pin in list(header.outputs) + list(header.inputs):
            header.free(pin)
        gpio.mode = None

    gpio.setmode, gpio.setwarnings, gpio.setup, gpio.output, gpio.cleanup = setmode, setwarnings, setup, output, cleanup
    package = ModuleType("RPi")
    package.__path__ = []  # a package, so `import RPi.GPIO` resolves the submodule from sys.modules
    package.GPIO = gpio
    return package, gpio


# --- lgpio (what rpi-lgpio calls): a gpiochip whose lines are the header's pins ---------------------------------

LG_KERNEL_IN_USE, LG_KERNEL_OUTPUT = 0x1, 0x2
LG_INPUT, LG_OUTPUT = 0x100, 0x200  # the "claimed by this process" bits rpi-lgpio tests for
CHIP_LINES = 54


class LgpioError(Exception):
    """The base of each stand-in's ``lgpio.error``, what the real module raises when a call fails."""


def lgpio_module(header: Header, *, chip: int = 4, openable: bool = True) -> ModuleType:
    """A stand-in for ``lgpio`` with one gpiochip, number ``chip``; ``openable=False`` refuses to open it."""
    lg = ModuleType("lgpio")
    error = type("error", (LgpioError,), {"__module__": "lgpio"})  # named as the real one, for the messages
    lg.error = error
    lg.SET_PULL_NONE, lg.SET_PULL_UP, lg.SET_PULL_DOWN = 0x80, 0x20, 0x40
    lg.RISING_EDGE, lg.FALLING_EDGE, lg.BOTH_EDGES = 1, 2, 3
    lg.GPIO_BUSY = -50
    lg.opened: list[int] = []  # chip numbers opened, in order
    lg.closed: list[int] = []
    handles: dict[int, int] = {}

    def _chip(handle: int) -> int:
        if handle not in handles:
            raise error("unknown handle")
        return handles[handle]

    def _line(handle: int, gpio: int) -> int:
        _chip(handle)
        if not 0 <= gpio < CHIP_LINES:
            raise error("bad GPIO number")
        return gpio

    def gpiochip_open(number: int) -> int:
        if number != chip or not openable:
            raise error("can not open gpiochip")
        handle = len(lg.opened) + 1
        handles[handle] = number
        lg.opened.append(number)
        return handle

    def gpiochip_close(handle: int) -> int:
        lg.closed.append(handles.pop(handle))
        return 0

    def gpio_get_chip_info(handle: int) -> tuple[int, int, str, str]:
        _chip(handle)
        return 0, CHIP_LINES, f"gpiochip{chip}", "pinctrl-rp1"

    def gpio_get_mode(handle: int, gpio: int) -> int:
        pin = _line(handle, gpio)
        if pin in header.outputs:
            return LG_OUTPUT | LG_KERNEL_IN_USE | LG_KERNEL_OUTPUT
        return LG_INPUT | LG_KERNEL_IN_USE if pin in header.inputs else 0

    def gpio_claim_output(handle: int, gpio: int, level: int = 0, flags: int = 0) -> int:
        header.claim_output(_line(handle, gpio), level)
        return 0

    def gpio_claim_input(handle: int, gpio: int, flags: int = 0) -> int:
        header.claim_input(_line(handle, gpio))
        return 0

    def gpio_free(handle: int, gpio: int) -> int:
        header.free(_line(handle, gpio))
        return 0

    def gpio_read(handle: int, gpio: int) -> int:
        return header.level(_line(handle, gpio))

    def gpio_write(handle: int, gpio: int, level: int) -> int:
        pin = _line(handle, gpio)
        if pin not in header.outputs:
            raise error("GPIO not allocated")
        header.write(pin, level)
        return 0

    def error_text(code: int) -> str:
        return "GPIO busy" if code == lg.GPIO_BUSY else f"lgpio error {code}"

    for function in (
        gpiochip_open,
        gpiochip_close,
        gpio_get_chip_info,
        gpio_get_mode,
        gpio_claim_output,
        gpio_claim_input,
        gpio_free,
        gpio_read,
        gpio_write,
        error_text,
    ):
        setattr(lg, function.__name__, function)
    return lg
