"""The pure LED model: priorities, TTLs on an injected clock, progress, and what patterns render."""

from __future__ import annotations

import json

import pytest
from claw.leds.daemon import LedService
from claw.leds.state import (
    COLORS,
    DARK,
    MAX_SOURCES,
    NUM_PIXELS,
    OFF,
    PATTERNS,
    SIGNAL_STATES,
    LedState,
    Level,
    Look,
    parse_color,
    render,
)

MANUAL_RED = Look("solid", COLORS["red"], 0.2)


def test_alert_beats_activity_beats_manual(clock):
    state = LedState(clock)
    state.put("manual", Level.MANUAL, MANUAL_RED)
    assert state.winner().key == "manual"
    state.signal("openclaw", "inference")
    assert state.winner().state == "inference"
    state.signal("systemd", "service_down", detail="nginx failed")
    clock.advance(1)
    state.signal("openclaw", "tool_call")  # newer, but activity never hides an alert
    assert [layer.level for layer in state.layers()] == [Level.ALERT, Level.ACTIVITY, Level.MANUAL]
    assert state.winner().state == "service_down"
    assert state.frame()[0][:3] == COLORS["red"]
    assert state.unsignal("systemd")
    assert state.winner().state == "tool_call"
    assert state.unsignal("openclaw")
    assert state.winner().key == "manual"
    assert state.frame() == render(MANUAL_RED, 0)


def test_a_status_source_beats_a_request_on_the_same_level(clock):
    state = LedState(clock)
    state.signal("prometheus", "alert_firing")
    clock.advance(1)
    state.put("flash", Level.ALERT, Look("blink", COLORS["white"]), ttl=10)
    assert state.winner().source == "prometheus"


def test_ttl_expiry_follows_the_injected_clock(clock):
    state = LedState(clock)
    state.signal("crush-watch", "crush_unreachable", ttl=5)
    clock.advance(4.9)
    assert state.winner().expires_in(clock()) == pytest.approx(0.1)
    clock.advance(0.1)
    assert state.winner() is None
    assert state.frame() == DARK


def test_a_state_without_ttl_takes_the_tables_default(clock):
    state = LedState(clock)
    state.signal("hook", "error")
    assert SIGNAL_STATES["error"].ttl == 10
    clock.advance(9.99)
    assert state.winner().state == "error"
    clock.advance(0.01)
    assert state.layers() == []


def test_refreshing_a_signal_extends_it_but_keeps_its_phase(clock):
    state = LedState(clock)
    first = state.signal("systemd", "service_down", ttl=15)
    clock.advance(10)
    again = state.signal("systemd", "service_down", ttl=15)
    assert again.started == first.started
    assert again.seq == first.seq
    assert again.expires_at == clock() + 15
    clock.advance(10)
    assert state.winner().state == "service_down"
    changed = state.signal("systemd", "alert", ttl=15)
    assert changed.started == clock()


def test_clear_requests_keeps_status_signals(clock):
    state = LedState(clock)
    state.put("manual", Level.MANUAL, MANUAL_RED)
    state.put("pulse", Level.PULSE, Look("pulse", COLORS["green"]), ttl=1.5)
    state.signal("openclaw", "busy")
    assert sorted(state.clear_requests()) == ["manual", "pulse"]
    assert [layer.key for layer in state.layers()] == ["source:openclaw"]


def test_unknown_states_and_too_many_sources_are_refused(clock):
    state = LedState(clock)
    with pytest.raises(ValueError, match="unknown state 'panic'; known: alert, service_down"):
        state.signal("x", "panic")
    for index in range(MAX_SOURCES):
        state.signal(f"s{index}", "busy")
    with pytest.raises(ValueError, match=f"too many signal sources \\(limit {MAX_SOURCES}\\)"):
        state.signal("one-more", "busy")
    state.signal("s0", "idle")  # an existing source may still change state


@pytest.mark.parametrize(("percent", "lit"), [(0, 0), (1, 0), (12.5, 1), (50, 4), (87.4, 6), (99, 7), (100, 8)])
def test_progress_lights_one_pixel_per_eighth(clock, percent, lit):
    service = LedService(LedState(clock), "simulated")
    answer = service.handle_line(json.dumps({"op": "progress", "percent": percent, "color": "blue"}).encode())
    assert answer["ok"], answer
    assert answer["lit"] == lit
    lit_pixels = [p for p in answer["pixels"] if p != list(OFF)]
    assert len(lit_pixels) == lit
    assert all(p[:3] == list(COLORS["blue"]) for p in lit_pixels)
    assert answer["pixels"][:lit] == lit_pixels  # the bar fills from the left


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_pattern_renders_valid_frames(name):
    look = Look(name, COLORS["cyan"], 0.5, pixels=(OFF,) * NUM_PIXELS if name == "solid" else None)
    frames = {render(look, step * 0.05) for step in range(200)}
    for frame in frames:
        assert len(frame) == NUM_PIXELS
        for r, g, b, brightness in frame:
            assert all(isinstance(c, int) and 0 <= c <= 255 for c in (r, g, b))
            assert 0.0 <= brightness <= 0.5
            assert (brightness == 0.0) == ((r, g, b, brightness) == OFF)
    assert (len(frames) > 1) == PATTERNS[name].animated


def test_scanner_sweeps_and_rainbow_shows_many_colours():
    scanner = Look("scanner", COLORS["red"], 1.0)
    brightest = [max(range(NUM_PIXELS), key=lambda i: render(scanner, t)[i][3]) for t in (0.0, 0.4, 0.8, 1.2)]
    assert brightest == [0, 3, 7, 3]  # period 1.6 s: left, middle, right, back
    rainbow = render(Look("rainbow", brightness=0.3), 0.0)
    assert len({p[:3] for p in rainbow}) == NUM_PIXELS


def test_next_change_sleeps_when_nothing_animates(clock):
    state = LedState(clock)
    assert state.next_change(0.04) is None
    state.put("manual", Level.MANUAL, MANUAL_RED)
    assert state.next_change(0.04) is None
    state.put("manual", Level.MANUAL, MANUAL_RED, ttl=30)
    assert state.next_change(0.04) == pytest.approx(30)
    state.signal("openclaw", "inference", ttl=60)
    assert state.next_change(0.04) == pytest.approx(0.04)


@pytest.mark.parametrize(("text", "rgb"), [("red", (255, 0, 0)), (" Blue ", (0, 0, 255)), ("#FF8800", (255, 136, 0))])
def test_colours_parse_by_name_or_hex(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["blurple", "#ff88", "#gg0000", ""])
def test_unknown_colours_name_the_accepted_forms(text):
    with pytest.raises(ValueError, match="use '#rrggbb' or one of off, white, red"):
        parse_color(text)
