"""Status, journal and restart of an allow-list of systemd services, for the `system` MCP server.

A unit name is checked against a strict pattern and the allow-list before any process starts, and commands run
from an argument list (never a shell) through an injectable runner. Restart is plain ``systemctl restart UNIT``
as the unprivileged service user: a polkit rule installed by the deployment allows exactly the restartable units
to that user. No sudo, no root, no Docker socket.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# systemd's unit-name alphabet without its '\' escapes: no '/', no shell metacharacters, and no leading '-',
# so a name can never be read as an option.
UNIT_NAME = re.compile(r"^[A-Za-z0-9_:@][A-Za-z0-9_:.@-]{0,246}\.service$")
MAX_LOG_LINES = 200
MAX_LINE_CHARS = 500
STATUS_PROPERTIES = (
    "Id",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "StateChangeTimestamp",
    "MainPID",
    "NRestarts",
    "Result",
)


class UnitError(Exception):
    """A refused unit name or a failed systemctl/journalctl call; the message is one line for the model."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str], float], CommandResult]


def run_command(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run one command from an argument list, without a shell, with colours and pagers off."""
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError:
        raise UnitError(f"{argv[0]} is not installed on this host") from None
    except PermissionError:
        raise UnitError(f"{argv[0]} cannot be executed by this service") from None
    except subprocess.TimeoutExpired:
        raise UnitError(f"{Path(argv[0]).name} {argv[1]} did not finish within {timeout:g} s") from None
    return CommandResult(done.returncode, done.stdout, done.stderr)


def check_unit_name(unit: str) -> str:
    if not UNIT_NAME.match(unit):
        raise UnitError(f"{unit!r} is not a valid service name; expected a name like 'openclaw.service'")
    return unit


def summarise(stderr: str, limit: int = 300) -> str:
    """The first meaningful lines of stderr, on one line, short enough for a small model."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = "; ".join(lines[:3]) or "no error output"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class UnitStatus:
    unit: str
    description: str
    load_state: str
    active_state: str
    sub_state: str
    unit_file_state: str
    since: str | None
    main_pid: int | None
    restarts: int | None
    result: str


def parse_show(text: str) -> dict[str, dict[str, str]]:
    """``systemctl show`` output (blocks separated by blank lines) keyed by each block's Id."""
    blocks: dict[str, dict[str, str]] = {}
    for chunk in re.split(r"\n\s*\n", text.strip()):
        values = dict(line.partition("=")[::2] for line in chunk.splitlines() if "=" in line)
        if values.get("Id"):
            blocks[values["Id"]] = values
    return blocks


def _status(unit: str, values: dict[str, str]) -> UnitStatus:
    def number(key: str) -> int | None:
        raw = values.get(key, "")
        return int(raw) if raw.isdigit() else None

    pid = number("MainPID")
    return UnitStatus(
        unit=unit,
        description=values.get("Description", ""),
        load_state=values.get("LoadState", "unknown"),
        active_state=values.get("ActiveState", "unknown"),
        sub_state=values.get("SubState", "unknown"),
        unit_file_state=values.get("UnitFileState", ""),
        since=values.get("StateChangeTimestamp") or None,
        main_pid=pid or None,  # systemd reports 0 when nothing runs
        restarts=number("NRestarts"),
        result=values.get("Result", ""),
    )


class Units:
    """The allow-listed services and the commands that inspect and restart them."""

    def __init__(
        self,
        allowed: Sequence[str],
        restartable: Sequence[str],
        *,
        systemctl: str = "/usr/bin/systemctl",
        journalctl: str = "/usr/bin/journalctl",
        runner: Runner = run_command,
        timeout: float = 15.0,
        restart_timeout: float = 120.0,
    ) -> None:
        self.allowed = tuple(check_unit_name(unit) for unit in allowed)
        self.restartable = tuple(check_unit_name(unit) for unit in restartable)
        if stray := sorted(set(self.restartable) - set(self.allowed)):
            raise UnitError(f"restartable units must also be allowed: {', '.join(stray)}")
        self._systemctl = systemctl
        self._journalctl = journalctl
        self._run = runner
        self._timeout = timeout
        self._restart_timeout = restart_timeout

    def check(self, unit: str) -> str:
        """Refuse anything but an allow-listed service name; runs before any process starts."""
        check_unit_name(unit)
        if unit not in self.allowed:
            allowed = ", ".join(self.allowed) or "none (allowed_units is empty)"
            raise UnitError(f"{unit} is not one of the services this tool may inspect: {allowed}")
        return unit

    def status(self, units: Sequence[str]) -> list[UnitStatus]:
        names = [self.check(unit) for unit in units]
        if not names:  # `systemctl show` without a unit would describe the manager itself
            return []
        done = self._run([self._systemctl, "show", "--property=" + ",".join(STATUS_PROPERTIES), *names], self._timeout)
        if done.returncode != 0:
            raise UnitError(f"systemctl show failed (exit {done.returncode}): {summarise(done.stderr)}")
        blocks = parse_show(done.stdout)
        missing = [unit for unit in names if unit not in blocks]
        if missing:
            raise UnitError(f"systemctl show returned nothing for {', '.join(missing)}")
        return [_status(unit, blocks[unit]) for unit in names]

    def logs(self, unit: str, lines: int) -> list[str]:
        self.check(unit)
        if not 1 <= lines <= MAX_LOG_LINES:
            raise UnitError(f"lines must be between 1 and {MAX_LOG_LINES}, got {lines}")
        argv = [self._journalctl, "-u", unit, "-n", str(lines), "-o", "short-iso", "--no-pager"]
        done = self._run(argv, self._timeout)
        if done.returncode != 0:
            raise UnitError(f"journalctl failed (exit {done.returncode}): {summarise(done.stderr)}")
        entries = [line for line in done.stdout.splitlines() if line and not line.startswith("-- ")]
        if not entries and done.stderr.strip():
            # An unprivileged reader outside the systemd-journal group gets no lines and a hint on stderr.
            raise UnitError(f"cannot read the journal of {unit}: {summarise(done.stderr)}")
        return [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…" for line in entries]

    def restart(self, unit: str) -> UnitStatus:
        self.check(unit)
        if unit not in self.restartable:
            restartable = ", ".join(self.restartable) or "none"
            raise UnitError(f"{unit} may not be restarted by this tool; restartable: {restartable}")
        done = self._run([self._systemctl, "restart", unit], self._restart_timeout)
        if done.returncode != 0:
            raise UnitError(f"systemctl restart {unit} failed (exit {done.returncode}): {summarise(done.stderr)}")
        return self.status([unit])[0]
