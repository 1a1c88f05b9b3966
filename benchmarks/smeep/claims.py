"""What a reply states: the numbers in it, the numbers tied to a unit ("64 cores", "cores: 64", "16GB"), byte
quantities, and tokens shaped like an expected answer. The checks compare these with ground truth read at check
time, so a wrong value stated anywhere in the reply fails even when the right one is there too."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A number standing on its own: not part of an identifier (x9, b7, marmalade-44), a version (6.8.0), a date
# (2030-05-04), a time (09:30), a range (0-3) or a digit group list (2,21).
_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)(?<!\d-)(?<!\d:)"
    r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
    r"(?![\d_]|-\d|\.\d|,\d|:\d)"
)
# Words allowed between a unit and its number: "cores: 64", "core count is 64", "number of cores = 64".
_CONNECTOR = r"(?:(?:[:=]|\bis\b|\bare\b|\bwas\b|\bof\b|\bcount\b|\btotal\b|\bnumber\b)\s*)"
_BYTES = re.compile(r"\s*(?:([kmgt])i?b\b|(kilo|mega|giga|tera)bytes?\b)", re.IGNORECASE)
_SCALE_GIB = {"k": 1 / (1 << 20), "m": 1 / 1024, "g": 1.0, "t": 1024.0}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def numbers(text: str) -> list[tuple[float, int, int]]:
    """Each standalone number with its span."""
    found = _NUMBER.finditer(text)
    return [(float(m.group(1).replace(",", "") + (m.group(2) or "")), m.start(), m.end()) for m in found]


def values(text: str) -> list[float]:
    return [value for value, _, _ in numbers(text)]


def bound(text: str, units: Iterable[str], *, ordinal: bool = False) -> list[float]:
    """Numbers tied to one of ``units`` (regexes, e.g. ``cores?``): "64 cores", "64 CPU cores", "64-core",
    "cores: 64", "the core count is 64", and "build 8812" unless the unit is ``ordinal`` ("line 1" is a place,
    not a count)."""
    unit = "(?:" + "|".join(units) + ")"
    after = re.compile(rf"[\s-]*(?:[A-Za-z]+\s+){{0,2}}?{unit}(?!\w)", re.IGNORECASE)
    lead = "+" if ordinal else "*"
    before = re.compile(rf"(?<!\w){unit}\s*{_CONNECTOR}{lead}$", re.IGNORECASE)
    return [
        value
        for value, start, end in numbers(text)
        if after.match(text, end) or before.search(text[max(0, start - 40) : start])
    ]


def byte_quantities(text: str) -> list[float]:
    """Every number with a byte unit (kB/KiB ... TB/TiB, or spelled out), in GiB. GB and GiB are taken alike: the
    checks' tolerance covers the 7 % between them."""
    found = []
    for value, _, end in numbers(text):
        unit = _BYTES.match(text, end)
        if unit:
            found.append(value * _SCALE_GIB[(unit.group(1) or unit.group(2))[0].lower()])
    return found


def percents(text: str) -> list[float]:
    return [value for value, _, end in numbers(text) if re.match(r"\s*(?:%|percent\b)", text[end:], re.IGNORECASE)]


def shaped_like(text: str, example: str) -> list[str]:
    """Tokens with the shape of ``example`` (letters, digits and the same punctuation in the same order):
    "marmalade-44" finds "banana-12", a kernel release finds other kernel releases."""
    shape = "".join(
        r"[A-Za-z]+" if part.isalpha() else r"\d+" if part.isdigit() else re.escape(part)
        for part in re.findall(r"[A-Za-z]+|\d+|[^A-Za-z\d]", example)
    )
    return re.findall(rf"(?<![\w.-]){shape}(?![\w-]|\.\w)", text)


def weekdays(text: str) -> list[str]:
    return [day.capitalize() for day in re.findall(r"\b(" + "|".join(_WEEKDAYS) + r")\b", text, re.IGNORECASE)]


def close(value: float, truths: Iterable[float], relative: float = 0.0, absolute: float = 0.0) -> bool:
    return any(abs(value - truth) <= max(absolute, abs(truth) * relative) for truth in truths)
