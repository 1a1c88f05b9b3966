"""Incidents in one SQLite file, searchable with FTS5, bounded by count and age.

An incident is what the supervisor saw and did: when, which worker, the symptom, the worker's last log lines and
the action taken. Each insert prunes what is over ``max_incidents`` or older than ``max_age_days``. Calls block
(SQLite): the supervisor runs them in a worker thread; a lock makes the store safe to share between threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from claw.sqlite_file import open_wal

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    worker TEXT NOT NULL,
    kind TEXT NOT NULL,
    symptom TEXT NOT NULL,
    action TEXT NOT NULL,
    logs TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS incidents_at ON incidents (at);
CREATE VIRTUAL TABLE IF NOT EXISTS incidents_fts USING fts5(
    worker, kind, symptom, action, logs, content='incidents', content_rowid='id'
);
CREATE TRIGGER IF NOT EXISTS incidents_ai AFTER INSERT ON incidents BEGIN
    INSERT INTO incidents_fts (rowid, worker, kind, symptom, action, logs)
    VALUES (new.id, new.worker, new.kind, new.symptom, new.action, new.logs);
END;
CREATE TRIGGER IF NOT EXISTS incidents_ad AFTER DELETE ON incidents BEGIN
    INSERT INTO incidents_fts (incidents_fts, rowid, worker, kind, symptom, action, logs)
    VALUES ('delete', old.id, old.worker, old.kind, old.symptom, old.action, old.logs);
END;
"""
_COLUMNS = "id, at, worker, kind, symptom, action, logs"


class StoreError(Exception):
    """The incident database cannot be opened or written; one line."""


@dataclass(frozen=True)
class Incident:
    worker: str
    kind: str  # a claw.swarm.probes.SYMPTOMS entry
    symptom: str
    action: str
    logs: tuple[str, ...] = ()
    at: float = 0.0  # Unix time; 0 means now when recorded
    id: int = 0

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.at, timezone.utc)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.when.isoformat(),
            "worker": self.worker,
            "kind": self.kind,
            "symptom": self.symptom,
            "action": self.action,
            "logs": list(self.logs),
        }


def match_expression(text: str) -> str:
    """Free text as an FTS5 query: every word must occur (each quoted, so no FTS5 syntax is interpreted)."""
    words = text.split()
    if not words:
        raise ValueError("the search text is empty")
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _open_read_only(path: Path) -> sqlite3.Connection:
    """An existing store, read-only (SQLite refuses every write on it): for readers such as the supervisor agent's
    MCP server. The schema is the supervisor's to create; a missing file is an error, never created here."""
    if not path.is_file():
        raise OSError(f"{path} does not exist (the supervisor has recorded nothing yet)")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=5.0)


class IncidentStore:
    def __init__(
        self,
        path: Path,
        *,
        max_incidents: int = 10_000,
        max_age_days: float = 90.0,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.max_incidents = max_incidents
        self.max_age_s = max_age_days * 86400
        self.clock = clock
        self.read_only = read_only
        self._lock = threading.Lock()
        try:
            self._db = _open_read_only(path) if read_only else open_wal(path, _SCHEMA, SCHEMA_VERSION)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot open the incident database {path}: {err}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, incident: Incident) -> Incident:
        """Insert (``at`` 0 means now), prune, and return the incident with its id and time."""
        if self.read_only:
            raise StoreError(f"the incident database {self.path} is open read-only")
        at = incident.at or self.clock()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cursor = self._db.execute(
                    "INSERT INTO incidents (at, worker, kind, symptom, action, logs) VALUES (?, ?, ?, ?, ?, ?)",
                    (at, incident.worker, incident.kind, incident.symptom, incident.action, "\n".join(incident.logs)),
                )
                self._db.execute("DELETE FROM incidents WHERE at < ?", (self.clock() - self.max_age_s,))
                self._db.execute(
                    "DELETE FROM incidents WHERE id NOT IN (SELECT id FROM incidents ORDER BY id DESC LIMIT ?)",
                    (self.max_incidents,),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"the incident database {self.path} failed: {err}") from None
        return Incident(
            incident.worker, incident.kind, incident.symptom, incident.action, incident.logs, at, cursor.lastrowid or 0
        )

    def recent(self, *, worker: str | None = None, limit: int = 50) -> list[Incident]:
        """The newest incidents first, of one worker or all."""
        where, args = ("WHERE worker = ?", (worker,)) if worker else ("", ())
        return self._query(f"SELECT {_COLUMNS} FROM incidents {where} ORDER BY id DESC LIMIT ?", (*args, limit))

    def search(self, text: str, *, limit: int = 50) -> list[Incident]:
        """Incidents whose worker, symptom, action or log lines hold every word of ``text``, newest first."""
        prefixed = ", ".join(f"i.{column}" for column in _COLUMNS.split(", "))
        return self._query(
            f"SELECT {prefixed} FROM incidents_fts f JOIN incidents i ON i.id = f.rowid "
            "WHERE incidents_fts MATCH ? ORDER BY i.id DESC LIMIT ?",
            (match_expression(text), limit),
        )

    def _query(self, sql: str, args: Sequence[object]) -> list[Incident]:
        with self._lock:
            try:
                rows = self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"the incident database {self.path} failed: {err}") from None
        return [
            Incident(worker, kind, symptom, action, tuple(logs.splitlines()), at, rid)
            for rid, at, worker, kind, symptom, action, logs in rows
        ]
