"""``claw leds``: the subcommands parse, and signal/unsignal/get talk to a running daemon like a hook would."""

from __future__ import annotations

import argparse
import json
import sys

import anyio
import pytest
from claw.leds import cli, daemon, watcher


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="claw")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


async def run(argv: list[str]) -> int:
    """Run a handler in a worker thread: it blocks on the socket while the daemon serves on this loop."""
    args = parse(argv)
    return await anyio.to_thread.run_sync(args.handler, args)


def test_every_subcommand_has_a_handler():
    assert parse(["leds", "daemon", "--backend", "simulated"]).handler is daemon.run
    assert parse(["leds", "watch", "--unit", "x.service"]).handler is watcher.run
    for argv in (["signal", "hook", "busy"], ["unsignal", "hook"], ["get"]):
        assert callable(parse(["leds", *argv]).handler)


def test_an_unknown_state_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse(["leds", "signal", "hook", "partying"])
    assert stopped.value.code == 2
    assert "invalid choice: 'partying'" in capsys.readouterr().err


@pytest.mark.anyio
async def test_signal_get_unsignal_round_trip(daemon, client, capsys):
    sock = str(daemon.socket_path)
    assert (
        await run(
            ["leds", "signal", "openclaw", "tool_call", "--ttl", "30", "--detail", "web_search", "--socket", sock]
        )
        == 0
    )
    winner = (await client.get())["winner"]
    assert (winner["source"], winner["state"], winner["expires_in"], winner["detail"]) == (
        "openclaw",
        "tool_call",
        30,
        "web_search",
    )

    assert await run(["leds", "get", "--socket", sock]) == 0
    shown = capsys.readouterr().out
    assert "backend: simulated" in shown
    assert "activity source:openclaw" in shown
    assert "tool_call scanner, expires in 30.0 s (web_search)" in shown

    assert await run(["leds", "get", "--json", "--socket", sock]) == 0
    assert json.loads(capsys.readouterr().out)["winner"]["state"] == "tool_call"

    assert await run(["leds", "unsignal", "openclaw", "--socket", sock]) == 0
    assert (await client.get())["layers"] == []
    assert await run(["leds", "get", "--socket", sock]) == 0
    assert "no layers: the strip is off" in capsys.readouterr().out


@pytest.mark.anyio
async def test_a_refusal_exits_2_with_the_daemons_reason(daemon, capsys):
    assert await run(["leds", "signal", "hook", "busy", "--ttl", "-1", "--socket", str(daemon.socket_path)]) == 2
    assert "claw leds signal: signal: ttl: Input should be greater than 0" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_missing_daemon_exits_1_naming_the_socket(sock_dir, capsys):
    missing = sock_dir / "gone.sock"
    assert await run(["leds", "signal", "hook", "busy", "--socket", str(missing)]) == 1
    assert f"claw leds signal: LED daemon unavailable at {missing}" in capsys.readouterr().err


def test_daemon_refuses_an_unusable_backend_without_a_traceback(monkeypatch, sock_dir, capsys):
    monkeypatch.setitem(sys.modules, "blinkt", None)
    args = parse(["leds", "daemon", "--backend", "blinkt", "--socket", str(sock_dir / "s")])
    assert args.handler(args) == 2
    err = capsys.readouterr().err
    assert "claw leds daemon: blinkt cannot drive the strip" in err
    assert "Traceback" not in err
