"""The Raspberry Pi firmware's throttling word: its bits, where sysfs exposes it and how it is written.

The one owner of the ``get_throttled`` bit table. The `system` MCP server (:mod:`claw.mcp.sysinfo`), the claw
exporter (:mod:`claw.exporters.pi_sysfs`) and the LED watcher (:mod:`claw.leds.watcher`) each name the flags in
their own published spelling (a tool's JSON fields, a metric's labels, a reason for people), all taken from here.

The word is what ``vcgencmd get_throttled`` prints: bits 0-3 say a condition holds now, bits 16-19 that it has
held since boot (sticky until reboot).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# The firmware driver's get_throttled under /sys: the Pi 5's soc@107c000000 node, then the Pi 4's (and earlier).
THROTTLED_FILES = (
    "devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled",
    "devices/platform/soc/soc:firmware/get_throttled",
)
# A "now" bit's sticky "since boot" twin is this many bits higher.
OCCURRED_SHIFT = 16
_THROTTLED_WORD = re.compile(r"^(?:throttled=)?(?:0x)?([0-9a-fA-F]{1,8})$")


@dataclass(frozen=True)
class ThrottleCondition:
    """One condition of the word, with the names it is published under."""

    bit: int  # the "now" bit; bit + OCCURRED_SHIFT is "since boot"
    label: str  # the exporter's claw_throttled flag label (<label>, <label>_occurred)
    field: str  # the system MCP server's Throttling fields (<field>_now, <field>_occurred)
    text: str  # for people: the LED watcher's reason


THROTTLE_CONDITIONS = (
    ThrottleCondition(0, "under_voltage", "under_voltage", "under-voltage"),
    ThrottleCondition(1, "frequency_capped", "arm_freq_capped", "frequency capped"),
    ThrottleCondition(2, "throttled", "throttled", "throttled"),
    ThrottleCondition(3, "soft_temp_limit", "soft_temp_limit", "soft temperature limit"),
)


def throttle_bits(
    name: Callable[[ThrottleCondition], str], now: str = "", occurred: str = "_occurred"
) -> dict[str, int]:
    """Flag name -> bit for all eight flags, the "now" ones first: ``name(condition)`` plus ``now`` or ``occurred``."""
    return {name(c) + now: c.bit for c in THROTTLE_CONDITIONS} | {
        name(c) + occurred: c.bit + OCCURRED_SHIFT for c in THROTTLE_CONDITIONS
    }


def decode_throttled(word: int, bits: Mapping[str, int]) -> dict[str, bool]:
    """Each named flag of ``bits`` (as :func:`throttle_bits` gives them): set in ``word`` or not."""
    return {name: bool(word >> bit & 1) for name, bit in bits.items()}


def parse_throttled(text: str) -> int | None:
    """Accept the sysfs form (``50005``) and vcgencmd's (``throttled=0x50005``)."""
    match = _THROTTLED_WORD.match(text.strip())
    return int(match.group(1), 16) if match else None


def find_throttled_file(sys_dir: Path) -> Path | None:
    """The firmware's get_throttled under ``sys_dir`` (the directory standing for /sys), or None off a Pi."""
    for relative in THROTTLED_FILES:
        if (sys_dir / relative).is_file():
            return sys_dir / relative
    return None
