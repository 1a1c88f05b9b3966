"""``claw leds``: run the LED daemon or the status watcher, and talk to the daemon from hooks and shells.

claw leds daemon --backend auto                  own the strip (systemd runs this)
claw leds watch --unit openclaw.service ...      poll the appliance and drive alert/activity signals
claw leds signal openclaw tool_call --ttl 30     set one source's state (OpenClaw hooks call this)
claw leds unsignal openclaw                      drop one source's state
claw leds get [--json]                           what the strip shows, and why

Exit status: 0 done, 1 the daemon is unavailable, 2 the daemon refused the request.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from claw.leds import daemon, watcher
from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.leds.protocol import DEFAULT_SOCKET
from claw.leds.state import SIGNAL_STATES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("leds", help="drive the Blinkt! LED strip", description=__doc__)
    commands = parser.add_subparsers(dest="leds_command", metavar="COMMAND", required=True)

    run_daemon = commands.add_parser("daemon", help="run the LED daemon, the single owner of the strip")
    daemon.add_arguments(run_daemon)
    run_daemon.set_defaults(handler=daemon.run)

    watch = commands.add_parser("watch", help="poll the appliance's status and signal the daemon")
    watcher.add_arguments(watch)
    watch.set_defaults(handler=watcher.run)

    states = ", ".join(f"{name} ({spec.meaning})" for name, spec in SIGNAL_STATES.items())
    signal = commands.add_parser("signal", help="set a status source's state", epilog=f"states: {states}")
    signal.add_argument("source", help="who reports, e.g. openclaw")
    signal.add_argument("state", choices=list(SIGNAL_STATES), metavar="STATE", help="one of the states below")
    signal.add_argument("--ttl", type=float, help="seconds until the state expires (default: the state's own)")
    signal.add_argument("--detail", help="a short note shown by 'claw leds get'")
    signal.set_defaults(
        handler=lambda a: _call(a, "signal", source=a.source, state=a.state, ttl=a.ttl, detail=a.detail)
    )

    unsignal = commands.add_parser("unsignal", help="drop a status source's state")
    unsignal.add_argument("source")
    unsignal.set_defaults(handler=lambda a: _call(a, "unsignal", source=a.source))

    get = commands.add_parser("get", help="show the pixels and the layers behind them")
    get.add_argument("--json", action="store_true", help="print the daemon's answer as JSON")
    get.set_defaults(handler=lambda a: _call(a, "get"))

    for command in (signal, unsignal, get):
        command.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help=f"default {DEFAULT_SOCKET}")


def _call(args: argparse.Namespace, op: str, **fields: Any) -> int:
    try:
        answer = LedClient(args.socket).request_sync(op, **fields)
    except LedDaemonUnavailable as err:
        print(f"claw leds {op}: {err}", file=sys.stderr)
        return 1
    except LedRequestError as err:
        print(f"claw leds {op}: {err}", file=sys.stderr)
        return 2
    if op == "get":
        print(json.dumps(answer, indent=2) if args.json else describe(answer))
    return 0


def describe(answer: dict[str, Any]) -> str:
    """A ``get`` answer for people: the pixels, then each live layer, winner first."""
    pixels = " ".join("off" if p[3] == 0 else "#{:02x}{:02x}{:02x}@{:.2f}".format(*p) for p in answer["pixels"])
    lines = [f"backend: {answer['backend']}", f"pixels:  {pixels}"]
    for layer in answer["layers"] or []:
        expires = "" if layer["expires_in"] is None else f", expires in {layer['expires_in']:.1f} s"
        detail = f" ({layer['detail']})" if layer["detail"] else ""
        lines.append(f"  {layer['level']:<8} {layer['key']:<20} {layer['state']} {layer['pattern']}{expires}{detail}")
    if not answer["layers"]:
        lines.append("  no layers: the strip is off")
    return "\n".join(lines)
