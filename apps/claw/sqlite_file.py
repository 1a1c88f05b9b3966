"""One way to open the appliance's small plain SQLite stores (MCP reminders, the swarm's incidents)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_wal(path: Path, schema: str, version: int) -> sqlite3.Connection:
    """``path`` (its folder made if missing) in autocommit mode and WAL journaling, usable from any thread (callers
    hold their own lock), with ``schema`` applied and ``PRAGMA user_version`` set to ``version``. Multi-statement
    changes take their write lock with ``BEGIN IMMEDIATE``. Raises OSError or sqlite3.Error for the caller to name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        db.execute(f"PRAGMA user_version={int(version)}")
    except sqlite3.Error:
        db.close()
        raise
    return db
