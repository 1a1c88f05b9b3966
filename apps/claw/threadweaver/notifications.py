"""Notifications for the console: short texts the appliance's services post (a reminder that fired, a swarm
incident), kept in the console's own SQLite file, newest first, at most :data:`MAX_KEPT`.

Machine clients post them (``POST /notifications``, a gateway client's key: :mod:`.routes.notifications`); the
console lists them (``GET /notifications``, a session). A notification is its source, its text, optionally a title
and the agent it is for, and the rest of what was posted (``detail``, JSON), e.g. the incident the swarm supervisor
sends (docs/swarm.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claw.threadweaver.database import Database

MAX_KEPT = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    client TEXT NOT NULL,
    source TEXT NOT NULL,
    agent TEXT,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
"""
_COLUMNS = "id, at, client, source, agent, title, text, detail"


@dataclass(frozen=True)
class Notification:
    id: int
    at: float
    client: str  # the gateway client that posted it
    source: str
    agent: str | None
    title: str
    text: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "client": self.client,
            "source": self.source,
            "agent": self.agent,
            "title": self.title,
            "text": self.text,
            "detail": self.detail,
        }


class Notifications:
    """The notifications table in the console's database (created on first use); calls block."""

    def __init__(self, db: Database, *, max_kept: int = MAX_KEPT, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.max_kept = max_kept
        self.clock = clock
        db.ensure(_SCHEMA)

    def add(
        self, client: str, source: str, text: str, *, title: str = "", agent: str | None = None, detail: Any = None
    ) -> Notification:
        at = self.clock()
        encoded = json.dumps(detail or {}, sort_keys=True)
        with self.db.write() as db:
            db.execute(
                "INSERT INTO notifications (at, client, source, agent, title, text, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, client, source, agent, title, text, encoded),
            )
            row_id = db.last_insert_rowid()
            db.execute(
                "DELETE FROM notifications WHERE id NOT IN (SELECT id FROM notifications ORDER BY id DESC LIMIT ?)",
                (self.max_kept,),
            )
        return Notification(row_id, at, client, source, agent, title, text, detail or {})

    def recent(self, *, limit: int = 50, after: int = 0) -> list[Notification]:
        """Newest first; ``after``: only those with a greater id (what a console has not shown yet)."""
        rows = self.db.rows(
            f"SELECT {_COLUMNS} FROM notifications WHERE id > ? ORDER BY id DESC LIMIT ?", (after, limit)
        )
        return [Notification(*row[:7], json.loads(row[7])) for row in rows]
