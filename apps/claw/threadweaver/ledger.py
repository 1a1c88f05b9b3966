"""The spend ledger: what was spent, per thread, provider and gateway client, in the thread store's file.

The threads' spend is their replies' recorded cost (the message graph, :mod:`.store`, holds it on each message);
the gateway's is its own table, ``gateway_usage``: one row per request, with no message text, only who used what
and what it cost. Governance (:mod:`.governance`) checks the caps against these sums.
"""

from __future__ import annotations

import time
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
"""


def _usage_totals() -> dict[str, Any]:
    return {"cost_usd": 0.0, "tokens_in": 0, "tokens_out": 0, "requests": 0, "providers": {}}


class Ledger:
    """Spend and gateway usage in ``db`` (the thread store's :attr:`.store.ThreadStore.db`, opened already)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(_SCHEMA)

    def _sum(self, sql: str, bindings: list[Any]) -> float:
        return float(self.db.rows(sql, bindings)[0][0])

    def spend(self, *, thread_id: str | None = None, provider: str | None = None, client: str | None = None) -> float:
        """Recorded cost in USD: of one thread (its messages), of one gateway client (its requests), or else of
        everything, threads and gateway together, optionally of one provider (what a provider cap counts)."""
        return self._total("cost_usd", thread_id, provider, client)

    def tokens(self, *, thread_id: str | None = None, provider: str | None = None, client: str | None = None) -> int:
        """Recorded tokens, input and output together, chosen as :meth:`spend` chooses (what a token cap counts)."""
        return int(self._total("tokens_in + tokens_out", thread_id, provider, client))

    def _total(self, column: str, thread_id: str | None, provider: str | None, client: str | None) -> float:
        one = ("messages", "thread_id", thread_id) if thread_id is not None else None
        if one is None and client is not None:
            one = ("gateway_usage", "client", client)
        if one is not None:
            table, key, value = one
            sql, bindings = f"SELECT coalesce(sum({column}), 0) FROM {table} WHERE {key} = ?", [value]
            if provider is not None:
                sql, bindings = sql + " AND provider = ?", [*bindings, provider]
            return self._sum(sql, bindings)
        where, bindings = ("WHERE provider = ?", [provider] * 3) if provider is not None else ("", [])
        sql = (  # retired_spend: what deleted threads had spent (store.delete_thread keeps it for the caps)
            f"SELECT coalesce((SELECT sum({column}) FROM messages {where}), 0)"
            f" + coalesce((SELECT sum({column}) FROM gateway_usage {where}), 0)"
            f" + coalesce((SELECT sum({column}) FROM retired_spend {where}), 0)"
        )
        return self._sum(sql, bindings)

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

    def client_spend(self, caps: dict[str, float | None]) -> dict[str, dict[str, Any]]:
        """Each gateway client (of ``caps``: name -> cap, or with recorded usage): its cap, spend, tokens and
        requests."""
        usage = self.gateway_usage()
        return {
            name: {
                "cap_usd": caps.get(name),
                "spent_usd": usage.get(name, _usage_totals())["cost_usd"],
                **{key: value for key, value in usage.get(name, _usage_totals()).items() if key != "cost_usd"},
            }
            for name in sorted(set(caps) | set(usage))
        }

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
