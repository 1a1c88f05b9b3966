"""The daemon in-process on a temporary socket with the simulated backend, driven through LedClient."""

from __future__ import annotations

import asyncio
import json
import socket
import stat

import anyio
import pytest
from claw.leds.backends import SimulatedBackend
from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.leds.daemon import DaemonError, LedDaemon, LedService
from claw.leds.protocol import MAX_LINE_BYTES
from claw.leds.state import COLORS, DARK, LedState

pytestmark = pytest.mark.anyio

OFF = [0, 0, 0, 0.0]


async def raw_exchange(path, *lines: bytes) -> list[dict]:
    """Send lines on one connection and read one answer per line."""
    reader, writer = await asyncio.open_unix_connection(path)
    answers = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            answers.append(json.loads(await asyncio.wait_for(reader.readline(), 2)))
    finally:
        writer.close()
    return answers


async def test_get_on_a_fresh_daemon_is_dark(client):
    answer = await client.get()
    assert answer == {"ok": True, "backend": "simulated", "pixels": [OFF] * 8, "winner": None, "layers": []}


async def test_set_paints_a_range_and_keeps_the_other_pixels(client):
    await client.set_color("red", first=2, last=3)
    answer = await client.set_color("#0000ff", first=5, last=5, brightness=0.5)
    pixels = answer["pixels"]
    assert pixels[2] == pixels[3] == [255, 0, 0, 0.2]
    assert pixels[5] == [0, 0, 255, 0.5]
    assert [i for i, p in enumerate(pixels) if p != OFF] == [2, 3, 5]
    assert answer["winner"]["level"] == "manual"


async def test_progress_pattern_and_clear(client):
    progress = await client.progress(50)
    assert progress["lit"] == 4
    assert progress["pixels"][:4] == [[*COLORS["green"], 0.2]] * 4
    pattern = await client.pattern("scanner", color="cyan", ttl=60)
    assert pattern["winner"]["pattern"] == "scanner"
    assert pattern["winner"]["color"] == "#00ffff"
    assert pattern["winner"]["expires_in"] == 60
    cleared = await client.clear()
    assert cleared["removed"] == ["manual"]
    assert cleared["layers"] == []


async def test_pulse_and_flash_are_short_lived_layers_above_manual(client, clock):
    await client.set_color("white")
    pulse = await client.pulse("error", seconds=2)
    winner = pulse["winner"]
    assert (winner["key"], winner["level"], winner["state"], winner["pattern"]) == ("pulse", "pulse", "error", "pulse")
    assert (winner["color"], winner["source"], winner["expires_in"]) == ("#ff0000", None, 2.0)
    flash = await client.flash(color="yellow", seconds=5)
    assert [layer["key"] for layer in flash["layers"]] == ["flash", "pulse", "manual"]
    assert flash["pixels"][0] == [*COLORS["yellow"], 0.5]  # blink starts in its "on" half
    clock.advance(5)
    assert (await client.get())["winner"]["key"] == "manual"


async def test_signal_beats_requests_and_expires_by_ttl(client, clock):
    await client.flash(seconds=60)
    answer = await client.signal("systemd", "service_down", ttl=15, detail="nginx.service failed")
    assert answer["winner"]["source"] == "systemd"
    assert answer["winner"]["detail"] == "nginx.service failed"
    clock.advance(15)
    assert (await client.get())["winner"]["key"] == "flash"
    await client.signal("openclaw", "inference")
    assert (await client.unsignal("openclaw"))["removed"] is True
    assert (await client.unsignal("openclaw"))["removed"] is False


async def test_clear_leaves_status_signals(client):
    await client.signal("openclaw", "tool_call", ttl=30)
    await client.set_color("red")
    await client.pulse("success")
    cleared = await client.clear()
    assert sorted(cleared["removed"]) == ["manual", "pulse"]
    assert [layer["state"] for layer in cleared["layers"]] == ["tool_call"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"this is not json\n", "invalid JSON: Expecting value at column 1"),
        (b'{"op": "dance"}\n', "unknown op 'dance'; known ops: get, set, progress, pulse, flash, pattern"),
        (b'{"op": "progress", "percent": -5}\n', "progress: percent: Input should be greater than or equal to 0"),
        (b'{"op": "set", "color": "red", "last": 8}\n', "set: last: Input should be less than or equal to 7 (got 8)"),
        (b'{"op": "signal", "source": "a", "state": "on fire"}\n', "signal: state: unknown state 'on fire'"),
    ],
)
async def test_bad_requests_are_answered_and_the_connection_keeps_serving(daemon, line, message):
    refused, after = await raw_exchange(daemon.socket_path, line, b'{"op": "get"}\n')
    assert refused["ok"] is False
    assert message in refused["error"]
    assert after["ok"] is True


async def test_an_overlong_line_is_refused_and_the_daemon_keeps_serving(daemon, client):
    reader, writer = await asyncio.open_unix_connection(daemon.socket_path)
    writer.write(b'{"op": "get", "pad": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n')
    await writer.drain()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 2))
    assert answer == {"ok": False, "error": f"request line longer than {MAX_LINE_BYTES} bytes"}
    assert await asyncio.wait_for(reader.read(), 2) == b""  # that connection is closed
    writer.close()
    assert (await client.get())["ok"] is True


async def test_refusals_reach_the_client_as_led_request_errors(client):
    with pytest.raises(LedRequestError, match="set: color: unknown colour 'mauve'"):
        await client.set_color("mauve")
    with pytest.raises(LedRequestError, match="pattern: name: unknown pattern"):
        await client.pattern("disco")


async def test_client_limit_is_enforced(sock_dir, clock):
    backend = SimulatedBackend()
    async with LedDaemon(LedService(LedState(clock), "simulated"), backend, sock_dir / "s", max_clients=1) as daemon:
        holder_reader, holder = await asyncio.open_unix_connection(daemon.socket_path)
        holder.write(b'{"op": "get"}\n')
        assert json.loads(await holder_reader.readline())["ok"]  # served: it holds the only slot
        refused = await raw_exchange(daemon.socket_path, b'{"op": "get"}\n')
        assert refused == [{"ok": False, "error": "too many clients (limit 1); try again shortly"}]
        holder.close()
        await asyncio.sleep(0.05)
        assert (await raw_exchange(daemon.socket_path, b'{"op": "get"}\n'))[0]["ok"] is True


async def test_socket_mode_and_state_file(daemon, client, sock_dir):
    assert stat.S_IMODE(daemon.socket_path.stat().st_mode) == 0o660
    await client.set_color("purple", first=7, last=7)
    state_file = sock_dir / "state.json"
    with anyio.fail_after(2):
        while True:
            if state_file.exists() and json.loads(state_file.read_text())["pixels"][7] == [128, 0, 255, 0.2]:
                break
            await asyncio.sleep(0.01)
    written = json.loads(state_file.read_text())
    assert written["backend"] == "simulated"
    assert written["pixels"][:7] == [OFF] * 7
    assert not list(sock_dir.glob(".*.tmp"))


async def test_animation_writes_frames_only_while_animating(sock_dir):
    backend = SimulatedBackend()
    async with LedDaemon(LedService(LedState(), "simulated"), backend, sock_dir / "s", fps=50) as daemon:
        client = LedClient(daemon.socket_path)
        await client.pattern("rainbow")
        await asyncio.sleep(0.3)
        animated = daemon.frames_shown
        assert animated >= 5
        await client.set_color("green")
        await asyncio.sleep(0.05)
        still = daemon.frames_shown
        await asyncio.sleep(0.3)
        assert daemon.frames_shown == still
        assert backend.frame == ((0, 255, 0, 0.2),) * 8


async def test_stop_clears_the_strip_and_removes_the_socket(sock_dir):
    backend = SimulatedBackend(sock_dir / "state.json")
    path = sock_dir / "leds.sock"
    async with LedDaemon(LedService(LedState(), "simulated"), backend, path):
        await LedClient(path).set_color("red")
        await asyncio.sleep(0.05)
        assert backend.frame != DARK
    assert backend.frame == DARK
    assert json.loads((sock_dir / "state.json").read_text())["pixels"] == [OFF] * 8
    assert not path.exists()


async def test_a_stale_socket_is_replaced_but_a_live_one_is_kept(sock_dir):
    path = sock_dir / "leds.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # bound, never listening: what a crashed daemon leaves behind
    async with LedDaemon(LedService(LedState(), "simulated"), SimulatedBackend(), path):
        assert (await LedClient(path).get())["ok"]
        with pytest.raises(DaemonError, match=f"another LED daemon is already listening on {path}"):
            await LedDaemon(LedService(LedState(), "simulated"), SimulatedBackend(), path).start()
        assert (await LedClient(path).get())["ok"]


async def test_a_file_in_the_way_is_not_replaced(sock_dir):
    path = sock_dir / "leds.sock"
    path.write_text("precious")
    with pytest.raises(DaemonError, match="exists and is not a socket"):
        await LedDaemon(LedService(LedState(), "simulated"), SimulatedBackend(), path).start()
    assert path.read_text() == "precious"


async def test_a_missing_daemon_is_reported_with_the_socket_path(sock_dir):
    client = LedClient(sock_dir / "nobody.sock", timeout=1)
    with pytest.raises(LedDaemonUnavailable, match=f"LED daemon unavailable at {sock_dir / 'nobody.sock'}"):
        await client.get()
    with pytest.raises(LedDaemonUnavailable, match="No such file or directory"):
        client.request_sync("get")


async def test_request_sync_talks_to_the_same_daemon(client):
    await client.signal("openclaw", "busy")
    answer = await anyio.to_thread.run_sync(lambda: client.request_sync("unsignal", source="openclaw"))
    assert answer["removed"] is True
