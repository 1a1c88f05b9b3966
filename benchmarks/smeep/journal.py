"""The run journal: one JSON line per finished task trial, appended and flushed at once, so a crash loses nothing
finished and ``--resume`` skips what is already there."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The run's metadata line (if any) and every result line; a torn last line (a crash mid-write) is ignored."""
        meta: dict[str, Any] | None = None
        results: list[dict[str, Any]] = []
        if not self.path.exists():
            return None, results
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("type") == "meta":
                meta = entry
            elif entry.get("type") == "result":
                results.append(entry)
        return meta, results

    def done(self) -> set[tuple[str, str, int]]:
        return {(r["model"], r["id"], r["trial"]) for r in self.read()[1]}

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.exists() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
        with self.path.open("a") as stream:
            stream.write(("\n" if torn else "") + json.dumps(entry) + "\n")  # never glued to a torn last line
            stream.flush()
            os.fsync(stream.fileno())

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
