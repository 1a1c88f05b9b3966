"""Reminders for the `time` MCP server: a SQLite store and the scheduler task that fires them.

The store survives restarts (WAL journal, schema created on first use). The scheduler runs inside the server
process: it marks due reminders fired, flags the ones it fires more than ``late_after`` seconds after their time
(those were due while the process was down), and delivers them: the LED daemon's signal (:class:`LedSignal`) and
the text to the console (:class:`ConsoleNotice`, ThreadWeaver's ``POST /notifications``). Each reminder records the
MCP client that created it (its owner); the owner reads the texts of its fired reminders once, with
:meth:`ReminderStore.take_fired` (the ``due_reminders`` tool).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx

from claw.sqlite_file import open_wal

log = logging.getLogger(__name__)

STATUSES = ("pending", "fired", "cancelled")
LED_SIGNAL = {"op": "signal", "source": "reminder", "state": "reminder", "ttl": 60}
MAX_REPLY_BYTES = 64 * 1024
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    due_at REAL NOT NULL,
    zone TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'cancelled')),
    created_at REAL NOT NULL,
    fired_at REAL,
    late INTEGER NOT NULL DEFAULT 0,
    cancelled_at REAL,
    owner TEXT,
    seen_at REAL
);
CREATE INDEX IF NOT EXISTS reminders_status_due ON reminders (status, due_at);
"""
# Columns added after version 1: a file made before them gets them when opened.
_ADDED_COLUMNS = (("owner", "TEXT"), ("seen_at", "REAL"))
_COLUMNS = "id, message, due_at, zone, status, created_at, fired_at, late, cancelled_at, owner, seen_at"
T = TypeVar("T")


class ReminderError(Exception):
    """A refused reminder operation (limit reached, unknown id, already fired); one line for the model."""


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)


@dataclass(frozen=True)
class Reminder:
    id: int
    message: str
    due: datetime
    zone: str
    status: str
    created: datetime
    fired: datetime | None
    late: bool
    cancelled: datetime | None
    owner: str | None = None  # the MCP client that created it (None: a local stdio user)
    seen: datetime | None = None  # when its owner read it after it fired

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Reminder:
        rid, message, due, zone, status, created, fired, late, cancelled, owner, seen = row
        when = functools.partial(datetime.fromtimestamp, tz=timezone.utc)
        return cls(
            rid, message, when(due), zone, status, when(created), _utc(fired), bool(late), _utc(cancelled), owner,
            _utc(seen),
        )  # fmt: skip


class ReminderStore:
    """Reminders in one SQLite file. Safe to call from the tool worker threads and the scheduler at once."""

    def __init__(self, path: Path, *, max_pending: int = 1000) -> None:
        self.path = path
        self.max_pending = max_pending
        self._lock = threading.Lock()
        try:
            self._db = open_wal(path, _SCHEMA, SCHEMA_VERSION)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(reminders)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    self._db.execute(f"ALTER TABLE reminders ADD COLUMN {column} {kind}")
        except (OSError, sqlite3.Error) as err:
            raise ReminderError(f"cannot open the reminder database {path}: {err}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as err:  # a full disk or a lock held too long: say so, do not crash the tool
                raise ReminderError(f"the reminder database {self.path} failed: {err}") from None

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    def _one(self, db: sqlite3.Connection, reminder_id: int) -> Reminder | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM reminders WHERE id = ?", (reminder_id,)).fetchone()
        return Reminder.from_row(row) if row else None

    def _existing(self, db: sqlite3.Connection, reminder_id: int | None) -> Reminder:
        reminder = self._one(db, reminder_id or 0)
        if reminder is None:
            raise ReminderError(f"there is no reminder with id {reminder_id}; list_reminders shows the ids")
        return reminder

    def add(self, message: str, due: datetime, zone: str, now: datetime, owner: str | None = None) -> Reminder:
        def insert(db: sqlite3.Connection) -> Reminder:
            (pending,) = db.execute("SELECT count(*) FROM reminders WHERE status = 'pending'").fetchone()
            if pending >= self.max_pending:
                raise ReminderError(
                    f"there are already {pending} pending reminders, the limit; cancel some before adding more"
                )
            cursor = db.execute(
                "INSERT INTO reminders (message, due_at, zone, created_at, owner) VALUES (?, ?, ?, ?, ?)",
                (message, due.timestamp(), zone, now.timestamp(), owner),
            )
            return self._existing(db, cursor.lastrowid)

        return self._write(insert)

    def select(self, status: str, limit: int) -> tuple[list[Reminder], int]:
        """Reminders with ``status`` ('all' for every one): pending soonest first, the others newest first."""
        where, args = ("", ()) if status == "all" else ("WHERE status = ?", (status,))
        order = "due_at ASC" if status == "pending" else "due_at DESC"
        with self._locked() as db:
            (total,) = db.execute(f"SELECT count(*) FROM reminders {where}", args).fetchone()
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM reminders {where} ORDER BY {order}, id LIMIT ?", (*args, limit)
            ).fetchall()
        return [Reminder.from_row(row) for row in rows], total

    def cancel(self, reminder_id: int, now: datetime) -> Reminder:
        def cancel(db: sqlite3.Connection) -> Reminder:
            reminder = self._existing(db, reminder_id)
            if reminder.status == "fired":
                raise ReminderError(f"reminder {reminder_id} already fired at {reminder.fired:%Y-%m-%d %H:%M} UTC")
            if reminder.status == "cancelled":
                raise ReminderError(f"reminder {reminder_id} is already cancelled")
            db.execute(
                "UPDATE reminders SET status = 'cancelled', cancelled_at = ? WHERE id = ?",
                (now.timestamp(), reminder_id),
            )
            return self._existing(db, reminder_id)

        return self._write(cancel)

    def fire_due(self, now: datetime, late_after: float) -> list[Reminder]:
        """Mark every pending reminder due by ``now`` fired; late when fired over ``late_after`` s after due."""

        def fire(db: sqlite3.Connection) -> list[Reminder]:
            ts = now.timestamp()
            ids = [
                rid for (rid,) in db.execute("SELECT id FROM reminders WHERE status = 'pending' AND due_at <= ?", (ts,))
            ]
            db.execute(
                "UPDATE reminders SET status = 'fired', fired_at = ?, late = (? - due_at > ?) "
                "WHERE status = 'pending' AND due_at <= ?",
                (ts, ts, late_after, ts),
            )
            return [self._existing(db, rid) for rid in ids]

        return self._write(fire)

    def take_fired(self, owner: str | None, now: datetime, limit: int) -> list[Reminder]:
        """The fired reminders of ``owner`` (None: those a local user made) it has not read yet, oldest first,
        marked read: each is handed over once."""

        def take(db: sqlite3.Connection) -> list[Reminder]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM reminders WHERE status = 'fired' AND seen_at IS NULL AND owner IS ? "
                "ORDER BY fired_at, id LIMIT ?",
                (owner, limit),
            ).fetchall()
            ids = [row[0] for row in rows]
            db.executemany("UPDATE reminders SET seen_at = ? WHERE id = ?", [(now.timestamp(), rid) for rid in ids])
            return [self._existing(db, rid) for rid in ids]

        return self._write(take)

    def next_due(self) -> datetime | None:
        with self._locked() as db:
            (due,) = db.execute("SELECT min(due_at) FROM reminders WHERE status = 'pending'").fetchone()
        return _utc(due)

    def purge(self, before: datetime) -> int:
        """Forget fired and cancelled reminders whose time was before ``before``; pending ones are kept."""
        return self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM reminders WHERE status != 'pending' AND due_at < ?", (before.timestamp(),)
                ).rowcount
            )
        )


Clock = Callable[[], datetime]
Notify = Callable[[list[Reminder]], Awaitable[None]]


class LedSignal:
    """Ask the LED daemon (newline-delimited JSON on a unix socket) to show the reminder signal. Best effort:
    a missing daemon or a refusal is logged, never raised."""

    def __init__(self, socket_path: Path, timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    async def __call__(self, fired: list[Reminder]) -> None:
        line = (json.dumps(LED_SIGNAL) + "\n").encode()
        reply = b""
        try:
            with anyio.fail_after(self.timeout):
                async with await anyio.connect_unix(self.socket_path) as stream:
                    await stream.send(line)
                    # The daemon answers each request with one line; read it to log a refusal.
                    while not reply.endswith(b"\n") and len(reply) < MAX_REPLY_BYTES:
                        reply += await stream.receive()
        except anyio.EndOfStream:
            pass  # closed without an answer: nothing to check
        except (OSError, TimeoutError, anyio.BrokenResourceError) as err:
            log.warning("reminder LED signal to %s failed: %s", self.socket_path, err)
            return
        try:
            answer = json.loads(reply) if reply.strip() else {}
        except ValueError:
            answer = {"ok": False, "error": f"unreadable answer {reply[:80]!r}"}
        if isinstance(answer, dict) and answer.get("ok") is False:
            log.warning("the LED daemon refused the reminder signal: %s", answer.get("error"))


class ConsoleNotice:
    """POST each fired reminder's text to the console (ThreadWeaver's ``/notifications``, with a gateway client's
    key). Best effort, like the LED: a console that is down or refuses is logged, never raised; the owner still
    reads the text with ``due_reminders``."""

    def __init__(self, url: str, key: str, *, verify: ssl.SSLContext | bool = True, timeout: float = 5.0) -> None:
        self.url = url
        self.key = key
        self.verify = verify
        self.timeout = timeout

    @staticmethod
    def payload(reminder: Reminder) -> dict[str, Any]:
        return {
            "source": "reminder",
            "title": "Reminder" + (" (late)" if reminder.late else ""),
            "text": reminder.message,
            "agent": reminder.owner,
            "reminder_id": reminder.id,
            "due": reminder.due.isoformat(),
            "late": reminder.late,
        }

    async def __call__(self, fired: list[Reminder]) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with httpx.AsyncClient(verify=self.verify, timeout=self.timeout, follow_redirects=False) as http:
                for reminder in fired:
                    answer = await http.post(self.url, json=self.payload(reminder), headers=headers)
                    answer.raise_for_status()
        except httpx.HTTPError as err:
            log.warning("reminder notification to the console at %s failed: %s", self.url, err)


class Deliveries:
    """Several ways of delivering fired reminders, each in turn (each one logs its own failures)."""

    def __init__(self, channels: list[Notify]) -> None:
        self.channels = channels

    async def __call__(self, fired: list[Reminder]) -> None:
        for channel in self.channels:
            await channel(fired)


class ReminderScheduler:
    """Fires due reminders: once at startup (catching up, flagged late), then whenever the next one is due."""

    def __init__(
        self,
        store: ReminderStore,
        clock: Clock,
        notify: Notify | None = None,
        *,
        late_after: float = 60.0,
        history: timedelta = timedelta(days=90),
        max_sleep: float = 30.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.notify = notify
        self.late_after = late_after
        self.history = history
        # Wake at least this often: the wall clock may jump (NTP after a boot without RTC time).
        self.max_sleep = max_sleep
        self._wake: anyio.Event | None = None

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(func, *args))

    async def fire_due(self) -> list[Reminder]:
        fired = await self._in_thread(self.store.fire_due, self.clock(), self.late_after)
        for reminder in fired:
            log.info("reminder %d fired%s: %s", reminder.id, " late" if reminder.late else "", reminder.message)
        if fired and self.notify is not None:
            await self.notify(fired)
        return fired

    async def startup(self) -> list[Reminder]:
        try:
            await self._in_thread(self.store.purge, self.clock() - self.history)
            return await self.fire_due()
        except (ReminderError, sqlite3.Error) as err:
            log.error("reminder scheduler startup: %s", err)  # the loop retries; the server still starts
            return []

    def wake(self) -> None:
        """Re-plan now (a reminder was added or cancelled). Call from the event loop."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = anyio.Event()
        while True:
            try:
                await self.fire_due()
                due = await self._in_thread(self.store.next_due)
            except (ReminderError, sqlite3.Error) as err:
                log.error("reminder scheduler: %s", err)
                due = None
            delay = self.max_sleep if due is None else (due - self.clock()).total_seconds()
            with anyio.move_on_after(min(max(delay, 0.01), self.max_sleep)):
                await self._wake.wait()
            self._wake = anyio.Event()
