"""The LED daemon's wire protocol: newline-delimited JSON over a unix socket, one request and one answer per line.

A request is ``{"op": NAME, ...fields}``; the answer is ``{"ok": true, ...state}`` or
``{"ok": false, "error": "one precise line"}``. Every successful answer carries the state after the request
(see :func:`snapshot`), so a client never needs a second round trip to see what it did.

=========  =================================================================================================
op         fields (defaults)
=========  =================================================================================================
get        --
set        color, brightness (0.2), first (0), last (7), ttl (none): paint pixels first..last on the manual layer
progress   percent 0..100, color ("green"), brightness (0.2), ttl: floor(percent * 8 / 100) pixels lit
pulse      kind "success" | "error", seconds (1.5): a short animation on the pulse layer
flash      color ("red"), seconds (10), hz (2), brightness (0.5): blink on the alert layer
pattern    name (rainbow, scanner, larson, breathe, heartbeat, blink), color, brightness (0.2), ttl
clear      --: removes what requests set (manual, pulse, flash); status signals stay
signal     source, state (a key of SIGNAL_STATES), ttl (the state's default), detail ("")
unsignal   source
=========  =================================================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from claw.leds.state import (
    COLORS,
    DEFAULT_BRIGHTNESS,
    NAMED_PATTERNS,
    NUM_PIXELS,
    RGB,
    SIGNAL_STATES,
    LedState,
    format_color,
    parse_color,
)

DEFAULT_SOCKET = Path("/run/claw-leds/leds.sock")
SOCKET_MODE = 0o660
MAX_LINE_BYTES = 64 * 1024
MAX_TTL_S = 7 * 86400
SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$"


class ProtocolError(ValueError):
    """A request line the daemon cannot act on; the message is what the client gets back."""


def _color_text(value: object) -> RGB:
    if not isinstance(value, str):
        raise ValueError("colour must be a string: a name like 'red' or '#rrggbb'")
    return parse_color(value)


def _one_of(names: dict[str, Any], what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(names)}")
        return value

    return BeforeValidator(check)


Color = Annotated[RGB, BeforeValidator(_color_text)]
Brightness = Annotated[float, Field(ge=0.0, le=1.0)]
PixelIndex = Annotated[int, Field(ge=0, le=NUM_PIXELS - 1)]
Ttl = Annotated[float, Field(gt=0, le=MAX_TTL_S)]
SourceName = Annotated[str, Field(pattern=SOURCE_PATTERN)]


class LedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GetRequest(LedRequest):
    op: Literal["get"]


class SetRequest(LedRequest):
    op: Literal["set"]
    color: Color
    brightness: Brightness = DEFAULT_BRIGHTNESS
    first: PixelIndex = 0
    last: PixelIndex = NUM_PIXELS - 1
    ttl: Ttl | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SetRequest:
        if self.first > self.last:
            raise ValueError(f"first ({self.first}) is after last ({self.last})")
        return self


class ProgressRequest(LedRequest):
    op: Literal["progress"]
    percent: Annotated[float, Field(ge=0, le=100)]
    color: Color = COLORS["green"]
    brightness: Brightness = DEFAULT_BRIGHTNESS
    ttl: Ttl | None = None


class PulseRequest(LedRequest):
    op: Literal["pulse"]
    kind: Literal["success", "error"]
    seconds: Annotated[float, Field(ge=0.2, le=10)] = 1.5


class FlashRequest(LedRequest):
    op: Literal["flash"]
    color: Color = COLORS["red"]
    seconds: Annotated[float, Field(ge=0.5, le=3600)] = 10.0
    hz: Annotated[float, Field(ge=0.5, le=10)] = 2.0
    brightness: Brightness = 0.5


class PatternRequest(LedRequest):
    op: Literal["pattern"]
    name: Annotated[str, _one_of(NAMED_PATTERNS, "pattern")]
    color: Color | None = None
    brightness: Brightness = DEFAULT_BRIGHTNESS
    ttl: Ttl | None = None


class ClearRequest(LedRequest):
    op: Literal["clear"]


class SignalRequest(LedRequest):
    op: Literal["signal"]
    source: SourceName
    state: Annotated[str, _one_of(SIGNAL_STATES, "state")]
    ttl: Ttl | None = None
    detail: Annotated[str, Field(max_length=200)] = ""


class UnsignalRequest(LedRequest):
    op: Literal["unsignal"]
    source: SourceName


OPS: dict[str, type[LedRequest]] = {
    "get": GetRequest,
    "set": SetRequest,
    "progress": ProgressRequest,
    "pulse": PulseRequest,
    "flash": FlashRequest,
    "pattern": PatternRequest,
    "clear": ClearRequest,
    "signal": SignalRequest,
    "unsignal": UnsignalRequest,
}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def parse_request(line: bytes) -> LedRequest:
    """Decode and validate one request line, or raise :class:`ProtocolError` saying exactly what is wrong."""
    if not line.strip():
        raise ProtocolError("empty request line; send one JSON object per line")
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("request is not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise ProtocolError(f"invalid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"request must be a JSON object, got {_JSON_TYPES.get(type(data), 'a number')}")
    if "op" not in data:
        raise ProtocolError(f"missing 'op'; known ops: {', '.join(OPS)}")
    op = data["op"]
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {op!r}; known ops: {', '.join(OPS)}")
    try:
        return OPS[op].model_validate(data)
    except ValidationError as err:
        raise ProtocolError(f"{op}: {describe_errors(err)}") from None


def describe_errors(err: ValidationError) -> str:
    """All validation errors on one line: ``field: message (got value)``."""
    parts = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"] if part not in {"function-before"})
        message = item["msg"].removeprefix("Value error, ")
        got = "" if item["type"] in {"missing", "value_error"} else f" (got {json.dumps(item['input'])[:40]})"
        parts.append(f"{where}: {message}{got}" if where else f"{message}{got}")
    return "; ".join(parts)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def snapshot(state: LedState, backend: str) -> dict[str, Any]:
    """The state as the wire shows it: pixels as ``[r, g, b, brightness]``, the winner and all live layers."""
    now = state.now()
    layers = [
        {
            "key": layer.key,
            "level": layer.level.label,
            "source": layer.source,
            "state": layer.state,
            "pattern": layer.look.pattern,
            "color": format_color(layer.look.color),
            "brightness": layer.look.brightness,
            "expires_in": None if layer.expires_at is None else round(layer.expires_in(now) or 0.0, 3),
            "detail": layer.detail,
        }
        for layer in state.layers()
    ]
    return {
        "backend": backend,
        "pixels": [list(p) for p in state.frame()],
        "winner": layers[0] if layers else None,
        "layers": layers,
    }
