"""The encrypted SQLite file the thread store and the ledger share (SQLite 3 Multiple Ciphers, WAL).

Every connection is opened with the appliance key (:mod:`.keys`): SQLite3MC keys a connection, not a file, so a
connection without the key reads nothing. Connections are pooled and each is used by one thread at a time, so
worker threads query side by side (WAL: readers never wait for the writer, nor for each other) and a slow search
never holds up a quick lookup. Writes take the write lock as well: one writer at a time in this process, so a
transaction that reads then writes is never refused with ``SQLITE_BUSY``.

Opening a connection derives the key (tens of milliseconds), so a connection goes back to the pool after use and
the pool keeps as many as the busiest moment needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw


class StoreError(Exception):
    """A thread store failure with a one-line message."""


class StoreKeyError(StoreError):
    """The file exists but this key does not open it (wrong key, or not a thread store)."""


class NotFound(StoreError):
    """An unknown thread or message id."""


class Database:
    """One encrypted SQLite file; safe to share between threads (a pool of keyed connections, one writer)."""

    def __init__(self, path: Path, key: str) -> None:
        self.file = Path(path)
        if not key:
            raise StoreKeyError(f"the thread store at {self.file} needs a key; none was given")
        self._key = key
        self._idle: list[apsw.Connection] = []
        self._pool_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._held = threading.local()  # the connection this thread has taken, while it holds one
        self._closed = False
        self.file.parent.mkdir(parents=True, exist_ok=True)
        existed = self.file.exists() and self.file.stat().st_size > 0
        first = self._open(existed)
        first.pragma("journal_mode", "wal")  # recorded in the file: every later connection is in WAL mode
        self._idle.append(first)

    def _open(self, existed: bool = True) -> apsw.Connection:
        db = apsw.Connection(str(self.file))
        try:
            db.pragma("key", self._key)
            # Reading the schema is the first access that decrypts a page: a wrong key fails here, before anything
            # is written (nothing below runs, and no page of the file is touched).
            db.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except (apsw.NotADBError, apsw.CorruptError) as err:
            db.close()
            what = "with this key" if existed else "(it is not an encrypted thread store)"
            raise StoreKeyError(
                f"the thread store at {self.file} cannot be opened {what}: the key is wrong or the file is not a "
                "ThreadWeaver store; check store.key_file or THREADWEAVER_STORE_KEY (nothing was changed)"
            ) from err
        db.setbusytimeout(5000)
        db.pragma("synchronous", "normal")
        db.pragma("foreign_keys", "on")
        return db

    @contextmanager
    def connection(self) -> Iterator[apsw.Connection]:
        """A connection for this thread alone until the block ends (the same one again when nested)."""
        held: apsw.Connection | None = getattr(self._held, "db", None)
        if held is not None:
            yield held
            return
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"the thread store at {self.file} is closed")
            db = self._idle.pop() if self._idle else None
        db = db or self._open()
        self._held.db = db
        try:
            yield db
        finally:
            self._held.db = None
            with self._pool_lock:
                if self._closed:
                    db.close()
                else:
                    self._idle.append(db)

    @contextmanager
    def write(self) -> Iterator[apsw.Connection]:
        """A transaction under the write lock: committed when the block ends, rolled back if it raises."""
        with self._write_lock, self.connection() as db, db:
            yield db

    def rows(self, sql: str, bindings: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connection() as db:
            return list(db.execute(sql, tuple(bindings)))

    def execute(self, sql: str, bindings: Sequence[Any] = ()) -> int:
        """One write statement, committed before it returns; the last inserted row id."""
        with self.write() as db:
            db.execute(sql, tuple(bindings))
            return db.last_insert_rowid()

    def ensure(self, schema: str, added_columns: Sequence[tuple[str, str, str]] = ()) -> None:
        """Create what ``schema`` (``CREATE ... IF NOT EXISTS``) describes, and add the ``(table, column,
        definition)`` columns a file made before them lacks."""
        with self.write() as db:
            db.execute(schema)
            for table, column, definition in added_columns:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def checkpoint(self) -> bool:
        """Copy the WAL into the file and truncate it to 0 bytes (``wal_checkpoint(TRUNCATE)``), no writer in
        between; False when a reader kept it from completing (after the busy timeout)."""
        with self._write_lock, self.connection() as db:
            busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
        return not busy

    def close(self) -> None:
        """Close every idle connection now, and each busy one when its block ends."""
        with self._write_lock, self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()
