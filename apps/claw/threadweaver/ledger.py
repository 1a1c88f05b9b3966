"""The spend ledger: what was spent, per thread, provider and gateway client, in the thread store's file.

The threads' spend is their replies' recorded cost (the message graph, :mod:`.store`, holds it on each message);
the gateway's is its own table, ``gateway_usage``: one row per request, with no message text, only who used what
and what it cost. Governance (:mod:`.governance`) checks the caps against these sums.

A paid request in flight has a row in ``open_reservations`` (:meth:`Ledger.open_reservation`): written before the
request leaves, deleted in the same transaction that records its usage (:meth:`.governance.Governance.settling`),
or once it turned out to cost nothing. A row still there at start was in flight when the process died; it is
billed then (:meth:`.governance.Governance.recover`, :meth:`Ledger.bill_open`), so a crash loses no spend.

The sums the caps are checked against are kept as running totals (``spend_totals``: per thread, per gateway
client and per provider, by triggers on the three tables that hold spend, in the writing transaction itself), so
checking a cap reads a few rows whatever the history's length: summing every row of a provider's messages took
longer with every request the store had seen, and a request checks its caps twice.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import astuple, dataclass
from typing import Any

from claw.threadweaver.database import Database

# Made on open, like the graph's tables (a store made before the gateway gets it then).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_usage (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'complete',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_usage_client ON gateway_usage(client);
CREATE INDEX IF NOT EXISTS gateway_usage_provider ON gateway_usage(provider);
CREATE TABLE IF NOT EXISTS open_reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    thread_id TEXT,
    client TEXT,
    parent_id TEXT,
    message_id TEXT,
    base_chars INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    worst_in INTEGER NOT NULL DEFAULT 0,
    worst_out INTEGER NOT NULL DEFAULT 0,
    worst_usd REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
"""

# Running totals of what spend_totals' rows sum: ``scope`` 'thread' (``key``: the thread id), 'client' (the gateway
# client) or 'all' (key ''); ``provider`` '' for a row without one. Each table holding spend adds a row's cost and
# tokens when it is written and takes them back when it changes or goes (a deleted thread's spend comes back
# through retired_spend's insert). Made with its triggers in one transaction, then filled from the rows already
# there (:meth:`Ledger._ensure_totals`).
_TOTALS_TABLE = """
CREATE TABLE spend_totals (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    provider TEXT NOT NULL,
    cost_usd REAL NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key, provider)
) WITHOUT ROWID;
"""
# Each table holding spend, with the scopes its rows count in: (scope, the column naming the row's key; None: '').
_TOTALS_SOURCES: tuple[tuple[str, tuple[tuple[str, str | None], ...]], ...] = (
    ("messages", (("thread", "thread_id"), ("all", None))),
    ("gateway_usage", (("client", "client"), ("all", None))),
    ("retired_spend", (("all", None),)),
)
_SPEND_COLUMNS = ("cost_usd", "tokens_in", "tokens_out", "provider")


def _key(column: str | None, row: str | None = None) -> str:
    """The SQL of a row's key in its scope: its column (of trigger row ``row``), or '' for the 'all' scope."""
    if column is None:
        return "''"
    return f"{row}.{column}" if row else column


def _upserts(row: str, sign: str, scopes: tuple[tuple[str, str | None], ...]) -> str:
    """Statements adding trigger row ``row`` (``new`` or ``old``) to its totals (``sign`` '') or taking it back
    ('-'), in each of ``scopes``."""
    return "".join(
        f"INSERT INTO spend_totals VALUES ('{scope}', {_key(key, row)}, "
        f"coalesce({row}.provider, ''), {sign}{row}.cost_usd, {sign}({row}.tokens_in + {row}.tokens_out)) "
        "ON CONFLICT DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd, tokens = tokens + excluded.tokens;\n"
        for scope, key in scopes
    )


def _totals_triggers() -> list[str]:
    triggers = []
    for table, scopes in _TOTALS_SOURCES:
        spends = "{row}.cost_usd != 0 OR {row}.tokens_in != 0 OR {row}.tokens_out != 0"
        columns = (*_SPEND_COLUMNS, *(key for _, key in scopes if key))
        moved = " OR ".join(f"old.{column} IS NOT new.{column}" for column in columns)
        triggers += [
            f"CREATE TRIGGER spend_totals_{table}_insert AFTER INSERT ON {table} WHEN {spends.format(row='new')} "
            f"BEGIN\n{_upserts('new', '', scopes)}END;",
            f"CREATE TRIGGER spend_totals_{table}_update AFTER UPDATE ON {table} WHEN {moved} "
            f"BEGIN\n{_upserts('old', '-', scopes)}{_upserts('new', '', scopes)}END;",
            f"CREATE TRIGGER spend_totals_{table}_delete AFTER DELETE ON {table} WHEN {spends.format(row='old')} "
            f"BEGIN\n{_upserts('old', '-', scopes)}END;",
        ]
    # A deleted thread's rows: its messages' deletes left them at zero (or a rounding's remainder).
    triggers.append(
        "CREATE TRIGGER spend_totals_thread_gone AFTER DELETE ON threads "
        "BEGIN\nDELETE FROM spend_totals WHERE scope = 'thread' AND key = old.id;\nEND;"
    )
    return triggers


def _totals_fill() -> str:
    """The rows already stored, summed into spend_totals (once, when the table is made)."""
    rows = " UNION ALL ".join(
        f"SELECT '{scope}' AS scope, {_key(key)} AS key, coalesce(provider, '') AS provider, cost_usd AS cost, "
        f"tokens_in + tokens_out AS tokens FROM {table}"
        for table, scopes in _TOTALS_SOURCES
        for scope, key in scopes
    )
    return (
        "INSERT INTO spend_totals SELECT scope, key, provider, sum(cost), sum(tokens) "
        f"FROM ({rows}) GROUP BY scope, key, provider"
    )


@dataclass
class OpenReservation:
    """A paid request in flight, as the ledger keeps it until its usage is recorded: who it is for (``thread_id``
    with the message its reply goes under, ``parent_id``, or the message it continues, ``message_id``, after its
    first ``base_chars`` characters; or a gateway ``client``), its prompt's local token count (what a reply cut
    short is billed for its input) and its worst case (what it may cost at most: its reservation)."""

    provider: str
    model: str
    thread_id: str | None = None
    client: str | None = None
    parent_id: str | None = None
    message_id: str | None = None
    base_chars: int = 0
    prompt_tokens: int = 0
    worst_in: int = 0
    worst_out: int = 0
    worst_usd: float = 0.0
    created_at: float = 0.0
    id: int = 0


_RESERVATION_COLUMNS = (
    "provider, model, thread_id, client, parent_id, message_id, base_chars, prompt_tokens, worst_in, worst_out, "
    "worst_usd, created_at"
)


def _usage_totals() -> dict[str, Any]:
    return {"cost_usd": 0.0, "tokens_in": 0, "tokens_out": 0, "requests": 0, "providers": {}}


class Ledger:
    """Spend and gateway usage in ``db`` (the thread store's :attr:`.store.ThreadStore.db`, opened already)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(_SCHEMA)
        self._ensure_totals()

    def _ensure_totals(self) -> None:
        """The running totals with their triggers, made again and filled from the rows there when any part is
        missing or differs from this version's (a new store, one made before them or by another version, a table
        dropped with its triggers): in one transaction, so no write falls between the fill and the triggers."""
        statements = [_TOTALS_TABLE.strip(), *_totals_triggers()]
        # sqlite_master keeps each CREATE statement's text as it was given, less its final semicolon.
        wanted = {re.split(r"[\s(]+", sql, maxsplit=3)[2]: sql.rstrip(";") for sql in statements}
        with self.db.write() as db:
            rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'spend_totals%'").fetchall()
            if {name: sql for _, name, sql in rows} == wanted:
                return
            for kind, name, _ in rows:
                if kind in ("trigger", "table"):
                    db.execute(f"DROP {kind.upper()} IF EXISTS {name}")
            for sql in statements:
                db.execute(sql)
            db.execute(_totals_fill())

    def _sum(self, sql: str, bindings: list[Any]) -> float:
        return float(self.db.rows(sql, bindings)[0][0])

    def spend(self, *, thread_id: str | None = None, provider: str | None = None, client: str | None = None) -> float:
        """Recorded cost in USD: of one thread (its messages), of one gateway client (its requests), or else of
        everything, threads and gateway together, optionally of one provider (what a provider cap counts)."""
        return self._total("cost_usd", thread_id, provider, client)

    def tokens(self, *, thread_id: str | None = None, provider: str | None = None, client: str | None = None) -> int:
        """Recorded tokens, input and output together, chosen as :meth:`spend` chooses (what a token cap counts)."""
        return int(self._total("tokens", thread_id, provider, client))

    def _total(self, column: str, thread_id: str | None, provider: str | None, client: str | None) -> float:
        # The running totals (spend_totals): a thread's messages, a client's gateway requests, or everything
        # (threads, gateway and the spend deleted threads left in retired_spend).
        scope, key = ("thread", thread_id) if thread_id is not None else ("client", client)
        if key is None:
            scope, key = "all", ""
        sql, bindings = f"SELECT coalesce(sum({column}), 0) FROM spend_totals WHERE scope = ? AND key = ?", [scope, key]
        if provider is not None:
            sql, bindings = sql + " AND provider = ?", [*bindings, provider]
        return self._sum(sql, bindings)

    # -- reservations of requests in flight ------------------------------------------------------------------

    def open_reservation(self, reservation: OpenReservation) -> int:
        """Record a request about to leave (committed before it returns); its row id."""
        reservation.created_at = reservation.created_at or time.time()
        values = astuple(reservation)[:-1]
        return self.db.execute(
            f"INSERT INTO open_reservations ({_RESERVATION_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values
        )

    def close_reservation(self, row: int) -> None:
        """The request's usage is recorded, or it cost nothing (inside the recording transaction when in one)."""
        self.db.execute("DELETE FROM open_reservations WHERE id = ?", (row,))

    def open_reservations(self) -> list[OpenReservation]:
        """The requests in flight, oldest first: at start, those a crash left unbilled."""
        rows = self.db.rows(f"SELECT {_RESERVATION_COLUMNS}, id FROM open_reservations ORDER BY id")
        return [OpenReservation(*row) for row in rows]

    def stored_reply(self, reservation: OpenReservation, taken: set[str]) -> tuple[str, str] | None:
        """What a thread's request left in the store: ``(message id, its text)``. For a continuation, the message
        it continues, with the text appended after ``base_chars`` (None when none was); for a new reply, the
        oldest partial, unbilled reply under its parent made since it was reserved and not in ``taken`` (another
        request's); None for the gateway's or when there is none."""
        if reservation.thread_id is None:
            return None
        if reservation.message_id is not None:
            rows = self.db.rows("SELECT content FROM messages WHERE id = ?", (reservation.message_id,))
            text = rows[0][0][reservation.base_chars :] if rows else ""
            return (reservation.message_id, text) if text else None
        rows = self.db.rows(
            "SELECT id, content FROM messages WHERE thread_id = ? AND parent_id IS ? AND role = 'assistant' "
            "AND status = 'partial' AND provider = ? AND tokens_in = 0 AND tokens_out = 0 AND cost_usd = 0 "
            "AND created_at >= ? ORDER BY seq",
            (reservation.thread_id, reservation.parent_id, reservation.provider, reservation.created_at),
        )
        return next(((id_, text) for id_, text in rows if id_ not in taken), None)

    def bill_open(
        self, reservation: OpenReservation, tokens_in: int, tokens_out: int, cost_usd: float, message_id: str | None
    ) -> str:
        """Bill a reservation a crash left open and close it, in one transaction; where the bill went:

        ``message`` added to ``message_id``'s usage (the partial reply stored for it, or the message a
        continuation extends), ``thread`` an empty ``partial`` reply under its parent (left out
        of the history, like a stream cut before its first chunk), ``gateway`` a ``gateway_usage`` row of status
        ``recovered``, ``retired`` a ``retired_spend`` row (its thread was deleted meanwhile: the provider caps and
        the totals still count it)."""
        usage = (tokens_in, tokens_out, cost_usd)
        with self.db.write() as db:
            where = self._bill(db, reservation, usage, message_id)
            db.execute("DELETE FROM open_reservations WHERE id = ?", (reservation.id,))
        return where

    def _bill(self, db: Any, reservation: OpenReservation, usage: tuple[int, int, float], message: str | None) -> str:
        provider, model, now = reservation.provider, reservation.model, time.time()
        if reservation.message_id is not None and message is None:
            message = reservation.message_id  # a continuation's message takes even its worst case
        if message is not None and db.execute("SELECT 1 FROM messages WHERE id = ?", (message,)).fetchall():
            db.execute(
                "UPDATE messages SET tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, "
                "cost_usd = cost_usd + ? WHERE id = ?",
                (*usage, message),
            )
            return "message"
        thread = reservation.thread_id
        if thread is not None and db.execute("SELECT 1 FROM threads WHERE id = ?", (thread,)).fetchall():
            parent = reservation.parent_id
            if parent is not None and not db.execute("SELECT 1 FROM messages WHERE id = ?", (parent,)).fetchall():
                parent = None
            db.execute(
                "INSERT INTO messages (id, thread_id, parent_id, role, content, status, provider, model, tokens_in, "
                "tokens_out, cost_usd, created_at) VALUES (?, ?, ?, 'assistant', '', 'partial', ?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, thread, parent, provider, model, *usage, now),
            )
            return "thread"
        if reservation.client is not None:
            db.execute(
                "INSERT INTO gateway_usage (client, provider, model, tokens_in, tokens_out, cost_usd, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 'recovered', ?)",
                (reservation.client, provider, model, *usage, now),
            )
            return "gateway"
        db.execute(
            "INSERT INTO retired_spend (provider, model, tokens_in, tokens_out, cost_usd, messages, retired_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?)",
            (provider, model, *usage, now),
        )
        return "retired"

    # -- the gateway's usage (no message text: only who used what, and what it cost) ------------------------

    def record_gateway_usage(
        self,
        client: str,
        provider: str,
        model: str,
        *,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        status: str = "complete",
    ) -> None:
        """One gateway request's usage (``status``: ``complete``, or ``partial`` when the stream ended early and
        the tokens are an estimate); committed before it returns."""
        self.db.execute(
            "INSERT INTO gateway_usage (client, provider, model, tokens_in, tokens_out, cost_usd, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (client, provider, model, tokens_in, tokens_out, cost_usd, status, time.time()),
        )

    def gateway_usage(self) -> dict[str, dict[str, Any]]:
        """Per client: cost, tokens and requests, in all and per provider."""
        rows = self.db.rows(
            "SELECT client, provider, sum(cost_usd), sum(tokens_in), sum(tokens_out), count(*) FROM gateway_usage "
            "GROUP BY client, provider ORDER BY client, provider"
        )
        clients: dict[str, dict[str, Any]] = {}
        for client, provider, cost, tin, tout, count in rows:
            entry = clients.setdefault(client, _usage_totals())
            entry["providers"][provider] = {"cost_usd": cost, "tokens_in": tin, "tokens_out": tout, "requests": count}
            for key, value in (("cost_usd", cost), ("tokens_in", tin), ("tokens_out", tout), ("requests", count)):
                entry[key] += value
        return clients

    def client_spend(
        self, caps: dict[str, float | None], token_caps: dict[str, int | None] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Each gateway client (of ``caps``: name -> cap in USD, of ``token_caps``: name -> cap in tokens, or with
        recorded usage): its caps, spend, tokens (``spent_tokens``: in and out together, what ``cap_tokens``
        counts) and requests."""
        usage = self.gateway_usage()
        token_caps = token_caps or {}
        clients: dict[str, dict[str, Any]] = {}
        for name in sorted(set(caps) | set(token_caps) | set(usage)):
            totals = usage.get(name, _usage_totals())
            clients[name] = {
                "cap_usd": caps.get(name),
                "spent_usd": totals["cost_usd"],
                "cap_tokens": token_caps.get(name),
                "spent_tokens": totals["tokens_in"] + totals["tokens_out"],
                **{key: value for key, value in totals.items() if key != "cost_usd"},
            }
        return clients

    def spend_summary(self) -> dict[str, Any]:
        """Cost and tokens per provider (threads and gateway together; ``messages`` counts the threads' replies,
        ``gateway_requests`` the gateway's) and per thread; the total includes the gateway's spend."""
        per_provider = self.db.rows(
            "SELECT provider, sum(cost_usd), sum(tokens_in), sum(tokens_out), sum(message), sum(request) FROM ("
            "SELECT provider, cost_usd, tokens_in, tokens_out, 1 AS message, 0 AS request FROM messages "
            "WHERE provider IS NOT NULL UNION ALL "
            "SELECT provider, cost_usd, tokens_in, tokens_out, 0, 1 FROM gateway_usage UNION ALL "
            "SELECT provider, cost_usd, tokens_in, tokens_out, messages, 0 FROM retired_spend"
            ") GROUP BY provider ORDER BY provider"
        )
        per_thread = self.db.rows(
            "SELECT thread_id, sum(cost_usd), sum(tokens_in), sum(tokens_out) FROM messages GROUP BY thread_id"
        )
        return {
            "total_usd": self.spend(),
            "providers": {
                name: {
                    "cost_usd": cost,
                    "tokens_in": tin,
                    "tokens_out": tout,
                    "messages": count,
                    "gateway_requests": gw,
                }
                for name, cost, tin, tout, count, gw in per_provider
            },
            "threads": {
                tid: {"cost_usd": cost, "tokens_in": tin, "tokens_out": tout} for tid, cost, tin, tout in per_thread
            },
        }
