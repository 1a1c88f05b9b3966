"""Request lines the daemon must refuse, each with a message that says exactly what is wrong."""

from __future__ import annotations

import pytest
from claw.leds.protocol import ProtocolError, SetRequest, SignalRequest, parse_request


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "empty request line"),
        (b"{nope", "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
        (b"\xff\xfe{}", "request is not valid UTF-8"),
        (b"[1, 2]", "request must be a JSON object, got an array"),
        (b"42", "request must be a JSON object, got a number"),
        (b'{"color": "red"}', "missing 'op'; known ops: get, set, progress"),
        (b'{"op": "explode"}', "unknown op 'explode'; known ops: get, set"),
        (b'{"op": 7}', "unknown op 7"),
        (b'{"op": "set"}', "set: color: Field required"),
        (b'{"op": "set", "color": "blurple"}', "set: color: unknown colour 'blurple'"),
        (b'{"op": "set", "color": 255}', "set: color: colour must be a string"),
        (b'{"op": "set", "color": "red", "brightness": 1.5}', "brightness: Input should be less than or equal to 1"),
        (b'{"op": "set", "color": "red", "first": 8}', "first: Input should be less than or equal to 7 (got 8)"),
        (b'{"op": "set", "color": "red", "first": 5, "last": 2}', "first (5) is after last (2)"),
        (b'{"op": "set", "color": "red", "colour": "red"}', "colour: Extra inputs are not permitted"),
        (b'{"op": "progress", "percent": 101}', "progress: percent: Input should be less than or equal to 100"),
        (b'{"op": "progress", "percent": "half"}', "percent: Input should be a valid number"),
        (b'{"op": "pulse", "kind": "meh"}', "pulse: kind: Input should be 'success' or 'error'"),
        (b'{"op": "flash", "seconds": 0}', "flash: seconds: Input should be greater than or equal to 0.5"),
        (b'{"op": "pattern", "name": "disco"}', "pattern: name: unknown pattern 'disco'; known: rainbow, scanner"),
        (b'{"op": "signal", "source": "x", "state": "panic"}', "signal: state: unknown state 'panic'; known: alert"),
        (b'{"op": "signal", "source": "../x", "state": "busy"}', "signal: source: String should match pattern"),
        (b'{"op": "signal", "source": "x", "state": "busy", "ttl": -1}', "ttl: Input should be greater than 0"),
        (b'{"op": "unsignal"}', "unsignal: source: Field required"),
    ],
)
def test_bad_requests_get_a_precise_message(line, message):
    with pytest.raises(ProtocolError) as caught:
        parse_request(line)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_good_requests_take_defaults_and_colour_names():
    request = parse_request(b'{"op": "set", "color": "#00FF80", "last": 3}\n')
    assert isinstance(request, SetRequest)
    assert (request.color, request.brightness, request.first, request.last) == ((0, 255, 128), 0.2, 0, 3)
    signal = parse_request(b'{"op": "signal", "source": "openclaw", "state": "tool_call", "ttl": 30}')
    assert isinstance(signal, SignalRequest)
    assert (signal.source, signal.state, signal.ttl, signal.detail) == ("openclaw", "tool_call", 30, "")
