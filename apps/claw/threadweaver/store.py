"""The thread store: threads are trees of messages in one encrypted SQLite file (SQLite3 Multiple Ciphers, WAL).

Every message has a parent edge; a thread's history up to a message is :meth:`ThreadStore.path`, branching is
adding a second child to any message. The database, its WAL and the FTS5 index inside it are encrypted with
the appliance key (:mod:`.keys`), so no message text is on the disk in the clear. What was spent, per thread,
provider and gateway client, is the ledger's (:mod:`.ledger`), in the same file.

Durability: :meth:`add_message` commits before it returns (the user's message is safe before any provider is
called); a streamed reply is a row made with status ``partial`` and appended to by :class:`ReplyWriter` every
250 ms (or 16 KiB), then marked ``complete``. A process killed mid-stream leaves the partial reply.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from claw.threadweaver.database import Database, NotFound, StoreError
from claw.threadweaver.database import StoreKeyError as StoreKeyError  # where callers have always found it

Role = Literal["system", "user", "assistant", "tool", "note"]
Status = Literal["complete", "partial", "error", "blocked"]
ROLES = ("system", "user", "assistant", "tool", "note")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    fallback_provider TEXT,
    fallback_model TEXT,
    system_prompt TEXT NOT NULL DEFAULT '',
    max_output_tokens INTEGER,
    cap_usd REAL,
    created_at REAL NOT NULL,
    tools INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL REFERENCES threads(id),
    parent_id TEXT REFERENCES messages(id),
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    tool_calls TEXT NOT NULL DEFAULT '[]',
    tool_call_id TEXT,
    tool_name TEXT,
    status TEXT NOT NULL DEFAULT 'complete',
    provider TEXT,
    model TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    finish_reason TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_parent ON messages(parent_id);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id, seq);
CREATE INDEX IF NOT EXISTS messages_provider ON messages(provider);
CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(
    content, thread_id UNINDEXED, message_id UNINDEXED, tokenize = 'unicode61'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_fts(rowid, content, thread_id, message_id) VALUES (new.seq, new.content, new.thread_id, new.id);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    UPDATE message_fts SET content = new.content WHERE rowid = new.seq;
END;
-- What deleted threads had spent, per provider and model (no thread id, no text): the caps still count it.
CREATE TABLE IF NOT EXISTS retired_spend (
    provider TEXT NOT NULL,
    model TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0,
    retired_at REAL NOT NULL
);
"""
# Columns added after the first release: (table, column, definition). A store made before them gets them on open.
_ADDED_COLUMNS = (("threads", "tools", "INTEGER NOT NULL DEFAULT 1"),)


@dataclass
class Thread:
    id: str
    title: str
    provider: str
    model: str
    fallback_provider: str | None = None
    fallback_model: str | None = None
    system_prompt: str = ""
    max_output_tokens: int | None = None
    cap_usd: float | None = None
    created_at: float = 0.0
    tools: bool = True  # offer the MCP tools to the model in this thread


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    parent_id: str | None
    role: Role
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    status: Status = "complete"
    provider: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    finish_reason: str | None = None
    created_at: float = 0.0
    seq: int = 0


@dataclass
class SearchHit:
    thread_id: str
    message_id: str
    snippet: str


@dataclass
class Deletion:
    """What :meth:`ThreadStore.delete_thread` removed, and whether the WAL was emptied too."""

    thread_id: str
    messages: int
    wal_cleared: bool  # False: a reader held the WAL; its older (encrypted) frames stay until a later checkpoint


@dataclass
class Comparison:
    """Two branches: the shared history, and what each has after they diverge."""

    common: list[StoredMessage]
    only_a: list[StoredMessage]
    only_b: list[StoredMessage]


_MESSAGE_COLUMNS = (
    "id, thread_id, parent_id, role, content, tool_calls, tool_call_id, tool_name, status, provider, model, "
    "tokens_in, tokens_out, cost_usd, finish_reason, created_at, seq"
)
_THREAD_COLUMNS = (
    "id, title, provider, model, fallback_provider, fallback_model, system_prompt, max_output_tokens, cap_usd, "
    "created_at, tools"
)


def _message(row: Sequence[Any]) -> StoredMessage:
    values = list(row)
    values[5] = json.loads(values[5] or "[]")
    return StoredMessage(*values)


def _thread(row: Sequence[Any]) -> Thread:
    thread = Thread(*row)
    thread.tools = bool(thread.tools)  # SQLite has no boolean: 0/1
    return thread


_INSERT_MESSAGE = f"INSERT INTO messages ({_MESSAGE_COLUMNS.rsplit(',', 1)[0]}) VALUES ({', '.join('?' * 16)})"


def _row(message: StoredMessage) -> list[Any]:
    """The INSERT's values: every column but ``seq``, tool calls as JSON."""
    values = list(vars(message).values())[:-1]
    values[5] = json.dumps(values[5])
    return values


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StoreError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


def _fts_query(text: str) -> str:
    """Every word as a quoted FTS5 string, so a user's query is never FTS5 syntax (all words must match)."""
    words = [word.replace('"', '""') for word in text.split()]
    return " ".join(f'"{word}"' for word in words)


class ThreadStore:
    """The message graph in the encrypted file (:class:`.database.Database`); safe to share between threads."""

    def __init__(self, path: Path, key: str) -> None:
        self.db = Database(path, key)
        self.file = self.db.file
        self.db.ensure(_SCHEMA, _ADDED_COLUMNS)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ThreadStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- threads ------------------------------------------------------------------------------------------

    def create_thread(
        self,
        provider: str,
        model: str,
        *,
        title: str = "",
        fallback_provider: str | None = None,
        fallback_model: str | None = None,
        system_prompt: str = "",
        max_output_tokens: int | None = None,
        cap_usd: float | None = None,
        tools: bool = True,
    ) -> Thread:
        thread = Thread(
            uuid.uuid4().hex, title, provider, model, fallback_provider, fallback_model, system_prompt,
            max_output_tokens, cap_usd, time.time(), tools,
        )  # fmt: skip
        self.db.execute(
            f"INSERT INTO threads ({_THREAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(vars(thread).values()),
        )
        return thread

    def thread(self, thread_id: str) -> Thread:
        rows = self.db.rows(f"SELECT {_THREAD_COLUMNS} FROM threads WHERE id = ?", (thread_id,))
        if not rows:
            raise NotFound(f"no thread {thread_id}")
        return _thread(rows[0])

    def threads(self) -> list[Thread]:
        return [_thread(row) for row in self.db.rows(f"SELECT {_THREAD_COLUMNS} FROM threads ORDER BY created_at")]

    def update_thread(self, thread_id: str, **changes: Any) -> Thread:
        """Change a thread's settings (e.g. switch ``provider``/``model`` mid-thread)."""
        allowed = set(_THREAD_COLUMNS.replace(" ", "").split(",")) - {"id", "created_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise StoreError(f"unknown thread settings: {', '.join(sorted(unknown))}")
        self.thread(thread_id)
        if changes:
            assignments = ", ".join(f"{name} = ?" for name in changes)
            self.db.execute(f"UPDATE threads SET {assignments} WHERE id = ?", (*changes.values(), thread_id))
        return self.thread(thread_id)

    def delete_thread(self, thread_id: str) -> Deletion:
        """Delete a thread, every message of it and their search index entries, as far as SQLite allows.

        In one transaction, with ``secure_delete`` on (freed space is overwritten with zeros, not left in free
        pages): the rows, then an FTS5 ``optimize`` (a delete only adds tombstones to the index; the words stay in
        its older segments until they are merged, and ``optimize`` merges them all, about 1 s per 100,000
        messages). What the thread's replies cost moves to ``retired_spend`` (per provider and model, with no
        thread id or text), so the provider caps and the totals still count it. Then a ``TRUNCATE`` checkpoint
        copies the WAL into the file and empties it, so the older page versions still in the WAL go too; a reader
        in the middle of a query can keep it from completing (``wal_cleared`` False), and the frames stay until
        a later checkpoint (the last connection's close removes the WAL). Copies outside the file (backups, the
        flash's own remapped blocks) are not reached; everything is encrypted with the store key anyway.
        """
        with self.db.write() as db:
            self.thread(thread_id)
            secure = db.pragma("secure_delete")
            db.pragma("secure_delete", True)
            try:
                count = db.execute("SELECT count(*) FROM messages WHERE thread_id = ?", (thread_id,)).fetchall()[0][0]
                db.execute(
                    "INSERT INTO retired_spend (provider, model, tokens_in, tokens_out, cost_usd, messages, "
                    "retired_at) SELECT provider, model, sum(tokens_in), sum(tokens_out), sum(cost_usd), count(*), ? "
                    "FROM messages WHERE thread_id = ? AND provider IS NOT NULL GROUP BY provider, model",
                    (time.time(), thread_id),
                )
                db.execute(
                    "DELETE FROM message_fts WHERE rowid IN (SELECT seq FROM messages WHERE thread_id = ?)",
                    (thread_id,),
                )
                db.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
                db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
                db.execute("INSERT INTO message_fts(message_fts) VALUES ('optimize')")
            finally:
                db.pragma("secure_delete", secure)
        return Deletion(thread_id, count, self.db.checkpoint())

    # -- messages -----------------------------------------------------------------------------------------

    def add_message(
        self,
        thread_id: str,
        parent_id: str | None,
        role: Role,
        content: str = "",
        *,
        tool_calls: Sequence[dict[str, Any]] = (),
        tool_call_id: str | None = None,
        tool_name: str | None = None,
        status: Status = "complete",
        provider: str | None = None,
        model: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        finish_reason: str | None = None,
    ) -> StoredMessage:
        """Add a message under ``parent_id`` (None: a root) and commit it before returning."""
        _check_role(role)
        message = StoredMessage(
            uuid.uuid4().hex, thread_id, parent_id, role, content, list(tool_calls), tool_call_id, tool_name, status,
            provider, model, tokens_in, tokens_out, cost_usd, finish_reason, time.time(),
        )  # fmt: skip
        with self.db.write() as db:
            self._check_parent(thread_id, parent_id)
            db.execute(_INSERT_MESSAGE, _row(message))
            message.seq = db.last_insert_rowid()
        return message

    def add_chain(
        self, thread_id: str, parent_id: str | None, turns: Iterable[tuple[Role, str]], **fields: Any
    ) -> list[StoredMessage]:
        """Add a run of ``(role, content)`` messages, each the child of the one before, the first under
        ``parent_id`` (None: a root), in one transaction: all of them or none (an import of a conversation).
        ``fields`` (provider, model, status, ...) apply to every message."""
        now = time.time()
        messages: list[StoredMessage] = []
        for role, content in turns:
            _check_role(role)
            parent = messages[-1].id if messages else parent_id
            messages.append(StoredMessage(uuid.uuid4().hex, thread_id, parent, role, content, created_at=now, **fields))
        with self.db.write() as db:
            self._check_parent(thread_id, parent_id)
            db.executemany(_INSERT_MESSAGE, [_row(message) for message in messages])
            last = db.last_insert_rowid()
        for offset, message in enumerate(reversed(messages)):
            message.seq = last - offset
        return messages

    def _check_parent(self, thread_id: str, parent_id: str | None) -> None:
        self.thread(thread_id)
        if parent_id is not None and self.message(parent_id).thread_id != thread_id:
            raise StoreError(f"message {parent_id} is not in thread {thread_id}")

    def message(self, message_id: str) -> StoredMessage:
        rows = self.db.rows(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise NotFound(f"no message {message_id}")
        return _message(rows[0])

    def messages(self, thread_id: str) -> list[StoredMessage]:
        """Every message of a thread, oldest first (the whole tree; parent ids give its shape)."""
        self.thread(thread_id)
        rows = self.db.rows(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,))
        return [_message(row) for row in rows]

    def set_tool_calls(self, message_id: str, tool_calls: Sequence[dict[str, Any]]) -> StoredMessage:
        """Record the approval decisions on a message's tool calls: the one change a complete message allows."""
        return self.update_tool_calls(message_id, lambda _current: tool_calls)

    def update_tool_calls(
        self, message_id: str, change: Callable[[StoredMessage], Sequence[dict[str, Any]]]
    ) -> StoredMessage:
        """:meth:`set_tool_calls` to ``change(message)``, read and written under the write lock: no other change
        comes between (``change`` may raise to refuse: nothing is written)."""
        with self.db.write() as db:
            current = self.message(message_id)
            tool_calls = change(current)
            if [c["id"] for c in current.tool_calls] != [c["id"] for c in tool_calls]:
                raise StoreError(f"message {message_id} has other tool calls; only their decisions may change")
            db.execute("UPDATE messages SET tool_calls = ? WHERE id = ?", (json.dumps(list(tool_calls)), message_id))
        return self.message(message_id)

    def append(self, message_id: str, text: str) -> None:
        """Append streamed text to a message (committed at once)."""
        self.db.execute("UPDATE messages SET content = content || ? WHERE id = ?", (text, message_id))

    def finish(
        self,
        message_id: str,
        *,
        status: Status = "complete",
        content: str | None = None,
        tool_calls: Sequence[dict[str, Any]] | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        finish_reason: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> StoredMessage:
        """Mark a (streamed) message done, with its usage and cost; ``content`` replaces the text if given."""
        with self.db.write() as db:
            current = self.message(message_id)
            db.execute(
                "UPDATE messages SET status = ?, content = ?, tool_calls = ?, tokens_in = ?, tokens_out = ?, "
                "cost_usd = ?, finish_reason = ?, provider = ?, model = ? WHERE id = ?",
                (
                    status,
                    current.content if content is None else content,
                    json.dumps(list(current.tool_calls if tool_calls is None else tool_calls)),
                    tokens_in, tokens_out, cost_usd, finish_reason,
                    provider or current.provider, model or current.model, message_id,
                ),
            )  # fmt: skip
        return self.message(message_id)

    def extend(
        self,
        message_id: str,
        text: str = "",
        *,
        status: Status | None = None,
        tool_calls: Sequence[dict[str, Any]] | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        finish_reason: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> StoredMessage:
        """A continuation of a message: ``text`` appended (indexed for search like any text) and its usage and
        cost added to the message's, in one transaction; ``status`` (None: unchanged), ``tool_calls`` and
        ``finish_reason`` (None: unchanged) replaced; ``provider``/``model`` only where the message had none."""
        with self.db.write() as db:
            current = self.message(message_id)
            db.execute(
                "UPDATE messages SET content = content || ?, status = ?, tool_calls = ?, tokens_in = tokens_in + ?, "
                "tokens_out = tokens_out + ?, cost_usd = cost_usd + ?, finish_reason = ?, provider = ?, model = ? "
                "WHERE id = ?",
                (
                    text, status or current.status,
                    json.dumps(list(current.tool_calls if tool_calls is None else tool_calls)),
                    tokens_in, tokens_out, cost_usd, finish_reason or current.finish_reason,
                    current.provider or provider, current.model or model, message_id,
                ),
            )  # fmt: skip
        return self.message(message_id)

    # -- the tree -----------------------------------------------------------------------------------------

    def path(self, leaf_id: str) -> list[StoredMessage]:
        """The history from the root to ``leaf_id`` (inclusive), oldest first."""
        rows = self.db.rows(
            f"""WITH RECURSIVE up(id, depth) AS (
                    SELECT id, 0 FROM messages WHERE id = ?
                    UNION ALL SELECT m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.id
                    WHERE m.parent_id IS NOT NULL)
                SELECT {", ".join("m." + c.strip() for c in _MESSAGE_COLUMNS.split(","))}
                FROM up JOIN messages m ON m.id = up.id ORDER BY up.depth DESC""",
            (leaf_id,),
        )
        if not rows:
            raise NotFound(f"no message {leaf_id}")
        return [_message(row) for row in rows]

    def children(self, message_id: str) -> list[StoredMessage]:
        rows = self.db.rows(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE parent_id = ? ORDER BY seq", (message_id,))
        return [_message(row) for row in rows]

    def leaves(self, thread_id: str) -> list[StoredMessage]:
        """The tip of every branch of a thread, oldest branch first."""
        self.thread(thread_id)
        rows = self.db.rows(
            f"""SELECT {_MESSAGE_COLUMNS} FROM messages m WHERE thread_id = ?
                AND NOT EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = m.id) ORDER BY seq""",
            (thread_id,),
        )
        return [_message(row) for row in rows]

    def latest_leaf(self, thread_id: str) -> StoredMessage | None:
        leaves = self.leaves(thread_id)
        return leaves[-1] if leaves else None

    def branches(self, thread_id: str) -> list[list[StoredMessage]]:
        """Every root→leaf path of a thread."""
        return [self.path(leaf.id) for leaf in self.leaves(thread_id)]

    def compare(self, leaf_a: str, leaf_b: str) -> Comparison:
        a, b = self.path(leaf_a), self.path(leaf_b)
        shared = 0
        while shared < min(len(a), len(b)) and a[shared].id == b[shared].id:
            shared += 1
        return Comparison(a[:shared], a[shared:], b[shared:])

    # -- search ------------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        match = _fts_query(query)
        if not match:
            return []
        rows = self.db.rows(
            "SELECT thread_id, message_id, snippet(message_fts, 0, '[', ']', '…', 12) FROM message_fts "
            "WHERE message_fts MATCH ? ORDER BY rank LIMIT ?",
            (match, limit),
        )
        return [SearchHit(*row) for row in rows]


class ReplyWriter:
    """A streamed reply: a ``partial`` row, appended to every ``every_s`` seconds, or once ``every_chars``
    characters (or ``every_chunks`` chunks, when given) wait. Batched by time, not by chunk: each append is a
    transaction that re-indexes the row for search, so a fast stream (a thousand chunks a second) must not pay one
    per few chunks; a crash loses at most the last ``every_s`` of text.

    :meth:`buffer` keeps a chunk without any I/O and says whether a flush is due, so a caller on the event loop goes
    to a worker thread for :meth:`flush` only then (:meth:`add` does both, blocking).

    With ``base`` (:meth:`extend`), the reply continues a stored message: the text is appended to it, and
    :meth:`finish` adds the usage to the message's and keeps its text before the continuation."""

    def __init__(
        self,
        store: ThreadStore,
        message: StoredMessage,
        *,
        every_chunks: int | None = None,
        every_s: float = 0.25,
        every_chars: int = 16384,
        base: StoredMessage | None = None,
    ) -> None:
        self.store = store
        self.message = message
        self.every_chunks = every_chunks
        self.every_s = every_s
        self.every_chars = every_chars
        self.base = base
        self.text: list[str] = []
        self._pending: list[str] = []
        self._pending_chars = 0
        self._last_flush = time.monotonic()

    @classmethod
    def start(
        cls, store: ThreadStore, thread_id: str, parent_id: str | None, *, provider: str, model: str, **options: Any
    ) -> ReplyWriter:
        message = store.add_message(
            thread_id, parent_id, "assistant", "", status="partial", provider=provider, model=model
        )
        return cls(store, message, **options)

    @classmethod
    def extend(cls, store: ThreadStore, message: StoredMessage, **options: Any) -> ReplyWriter:
        """Continue ``message``: marked ``partial`` until :meth:`finish` (a crash leaves it so)."""
        return cls(store, store.extend(message.id, status="partial"), base=message, **options)

    def add(self, text: str) -> None:
        """:meth:`buffer`, then :meth:`flush` when one is due (blocking then)."""
        if self.buffer(text):
            self.flush()

    def buffer(self, text: str) -> bool:
        """Keep ``text`` for the next flush (no I/O); True when a flush is due."""
        if not text:
            return False
        self.text.append(text)
        self._pending.append(text)
        self._pending_chars += len(text)
        return (
            time.monotonic() - self._last_flush >= self.every_s
            or self._pending_chars >= self.every_chars
            or (self.every_chunks is not None and len(self._pending) >= self.every_chunks)
        )

    def flush(self) -> None:
        if self._pending:
            self.store.append(self.message.id, "".join(self._pending))
            self._pending.clear()
            self._pending_chars = 0
        self._last_flush = time.monotonic()

    @property
    def content(self) -> str:
        return "".join(self.text)

    def finish(self, **fields: Any) -> StoredMessage:
        self.flush()
        base = self.base
        if base is not None:
            # The message's own text and usage stay; the continuation's are added. A blocked continuation keeps
            # none of its text and leaves the message as it was (its cost is added all the same).
            if fields.get("status") == "blocked":
                fields["status"] = base.status
            if fields.get("content") is not None:
                fields["content"] = base.content + fields["content"]
            for name in ("tokens_in", "tokens_out", "cost_usd"):
                fields[name] = fields.get(name, 0) + getattr(base, name)
        return self.store.finish(self.message.id, **fields)
