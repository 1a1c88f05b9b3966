"""A worker double and the stand-in for systemd that runs it, for the swarm supervisor's tests.

Run as a module (``python -m tests.doubles.worker --port P`` in the repository root), it is a tiny OpenClaw
gateway: ``GET /healthz`` answers ``{"ok": true}``, ``POST /turn`` answers ``{"answer": "pong"}``,
``GET /deadlock`` blocks the one serving thread for good (the port still accepts TCP connections, nothing answers:
a deadlocked gateway), and ``POST /notify`` prints the JSON body it gets (so it doubles as the console's
notification endpoint). ``--crash`` exits at once with status 1: a worker that crash-loops.

:class:`LocalUnits` is a :class:`claw.swarm.units.UnitManager` over local processes: one command per "unit",
stdout and stderr appended to one log file per unit (its journal), restart = SIGKILL (which ends a stopped
process too) then start again. systemd itself cannot run inside pytest here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"ok": True})
        elif self.path == "/deadlock":
            print("deadlocking on purpose", flush=True)
            threading.Event().wait()
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/turn":
            self._answer(200, {"answer": "pong"})
        elif self.path == "/notify":
            print(f"notified: {body.decode()}", flush=True)
            self._answer(204, None)
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, body: object) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a worker gateway double")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crash", action="store_true", help="exit at once with status 1")
    args = parser.parse_args(argv)
    if args.crash:
        print("worker: fatal: cannot load the agent's config, exiting", file=sys.stderr, flush=True)
        return 1
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    print(f"worker {os.getpid()} listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


def command(port: int, *, crash: bool = False) -> list[str]:
    """The argv that runs this double as a worker on ``port`` (by module name: run by path, this folder's http.py
    would shadow the standard library's http)."""
    return [sys.executable, "-m", "tests.doubles.worker", "--port", str(port), *(["--crash"] if crash else [])]


class LocalUnits:
    """Units as local processes; ``restarts`` counts the restarts asked for, per unit. A unit in ``refused``
    has its restarts refused as polkit would refuse them (nothing is killed)."""

    def __init__(self, commands: dict[str, list[str]], log_dir: Path) -> None:
        from claw.swarm.units import UnitStatus

        self._status = UnitStatus
        self.commands = commands
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(commands, 0)
        self.refused: set[str] = set()

    def log_file(self, unit: str) -> Path:
        return self.log_dir / f"{unit}.log"

    def start(self, unit: str) -> subprocess.Popen[bytes]:
        with self.log_file(unit).open("ab") as log:
            process = subprocess.Popen(self.commands[unit], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.processes[unit] = process
        return process

    def pid(self, unit: str) -> int:
        return self.processes[unit].pid

    async def status(self, unit: str):  # -> UnitStatus
        process = self.processes.get(unit)
        if process is None:
            return self._status("inactive", "dead")
        if process.poll() is not None:
            return self._status("failed", f"exit-code {process.returncode}")
        return self._status("active", "running", process.pid)

    async def restart(self, unit: str) -> None:
        from claw.swarm.units import UnitError

        self.restarts[unit] += 1
        if unit in self.refused:
            raise UnitError(f"systemctl restart {unit} failed: Access denied")
        await self._kill(unit)
        self.start(unit)

    async def logs(self, unit: str, lines: int) -> list[str]:
        path = self.log_file(unit)
        text = path.read_text(errors="replace") if path.exists() else ""
        return text.splitlines()[-lines:] if lines else []

    async def _kill(self, unit: str) -> None:
        process = self.processes.get(unit)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        while process.poll() is None:
            await asyncio.sleep(0.01)

    async def stop_all(self) -> None:
        for unit in list(self.processes):
            await self._kill(unit)


class FixedUnits:
    """A UnitManager whose status is fixed (or an exception it raises): for probes on their own."""

    def __init__(self, status: object) -> None:
        self._status = status

    async def status(self, unit: str):  # -> UnitStatus
        if isinstance(self._status, Exception):
            raise self._status
        return self._status


class SystemctlScript:
    """A command runner for SystemdUnits: records each argv, answers like systemctl and journalctl would."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, str, str]]) -> None:
        self.answers = answers  # (program, first argument) -> (exit status, stdout, stderr)
        self.calls: list[list[str]] = []

    async def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.answers[(argv[0], argv[1])]


if __name__ == "__main__":
    sys.exit(main())
