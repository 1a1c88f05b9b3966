"""How the supervisor sees and restarts a worker's unit: the :class:`UnitManager` protocol, and systemd.

:class:`SystemdUnits` runs ``systemctl`` and ``journalctl`` from argument lists (never a shell) as asyncio
subprocesses, so nothing blocks the supervisor's loop. A restart first sends SIGKILL to every process of the unit
(``systemctl kill --signal=SIGKILL``), then ``systemctl restart``: a plain restart's SIGTERM reaches a deadlocked
process that ignores it only after ``TimeoutStopSec`` (90 s by default), which would break the 60 s promise. The
supervisor's user needs no root: a polkit rule lets it manage exactly the worker units (see docs/swarm.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_LINE_CHARS = 500
Runner = Callable[[Sequence[str], float], Awaitable[tuple[int, str, str]]]


class UnitError(Exception):
    """A unit command failed or timed out; the message is one line."""


@dataclass(frozen=True)
class UnitStatus:
    active_state: str  # systemd's ActiveState: active, activating, failed, inactive, ...
    sub_state: str = ""
    main_pid: int = 0  # 0: no main process

    @property
    def active(self) -> bool:
        return self.active_state in {"active", "reloading"}


class UnitManager(Protocol):
    async def status(self, unit: str) -> UnitStatus: ...

    async def restart(self, unit: str) -> None:
        """Kill every process of the unit, stopped or not, and start it again; UnitError when that fails."""

    async def logs(self, unit: str, lines: int) -> list[str]:
        """The unit's last ``lines`` log lines, oldest first; UnitError when unreadable."""


async def run_command(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """Run one command without a shell; (exit status, stdout, stderr). UnitError when missing or too slow."""
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
    except OSError as err:
        raise UnitError(f"cannot run {argv[0]}: {err.strerror or err}") from None
    try:
        out, err_out = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise UnitError(f"{' '.join(argv[:2])} did not finish within {timeout:g} s") from None
    except asyncio.CancelledError:  # the caller's own deadline: leave no systemctl behind
        process.kill()
        raise
    return process.returncode or 0, out.decode(errors="replace"), err_out.decode(errors="replace")


class SystemdUnits:
    """The real :class:`UnitManager`: systemctl and journalctl on this host."""

    def __init__(self, timeout: float = 10.0, runner: Runner | None = None) -> None:
        self.timeout = timeout
        self._run = runner or run_command

    async def _checked(self, *argv: str) -> str:
        code, out, err = await self._run(argv, self.timeout)
        if code != 0:
            reason = (err.strip().splitlines() or [f"exit status {code}"])[-1][:MAX_LINE_CHARS]
            raise UnitError(f"{' '.join(argv[:2])} {argv[-1]} failed: {reason}")
        return out

    async def status(self, unit: str) -> UnitStatus:
        out = await self._checked("systemctl", "show", "--property=ActiveState,SubState,MainPID", "--", unit)
        values = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
        pid = values.get("MainPID", "0")
        return UnitStatus(values.get("ActiveState", "unknown"), values.get("SubState", ""), int(pid or 0))

    async def restart(self, unit: str) -> None:
        # Every process of the unit (systemctl kill's default); it fails when nothing runs, and the restart starts it.
        await self._run(("systemctl", "kill", "--signal=SIGKILL", "--", unit), self.timeout)
        await self._checked("systemctl", "restart", "--", unit)

    async def logs(self, unit: str, lines: int) -> list[str]:
        if lines == 0:
            return []
        out = await self._checked("journalctl", "--no-pager", "--quiet", "-o", "cat", "-n", str(lines), "-u", unit)
        return [line[:MAX_LINE_CHARS] for line in out.splitlines()[-lines:]]
