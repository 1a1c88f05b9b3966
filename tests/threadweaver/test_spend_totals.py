"""The ledger's running totals (spend_totals): always what summing the stored rows gives, on every write path,
and a cap check whose cost does not grow with the store's history."""

from __future__ import annotations

import random

import pytest
from claw.threadweaver.ledger import Ledger, OpenReservation
from claw.threadweaver.store import ThreadStore

KEY = "5a" * 32
PROVIDERS = ("openai", "claude", "crush")
CLIENTS = ("agent-a", "agent-b")


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "threads.db", KEY) as opened:
        yield opened


def summed(ledger: Ledger, column: str, *, thread_id=None, provider=None, client=None) -> float:
    """What the rows sum to, read the slow way (every row), as the ledger did before the running totals."""
    expression = {"usd": "cost_usd", "tokens": "tokens_in + tokens_out"}[column]
    tables = ["messages", "gateway_usage", "retired_spend"]
    if thread_id or client:
        tables = ["messages"] if thread_id else ["gateway_usage"]
    total = 0.0
    for table in tables:
        sql, bindings = f"SELECT coalesce(sum({expression}), 0) FROM {table} WHERE 1", []
        if thread_id:
            sql, bindings = sql + " AND thread_id = ?", [*bindings, thread_id]
        if client:
            sql, bindings = sql + " AND client = ?", [*bindings, client]
        if provider:
            sql, bindings = sql + " AND provider = ?", [*bindings, provider]
        total += ledger.db.rows(sql, bindings)[0][0]
    return total


def assert_totals_match(ledger: Ledger, threads: list[str]) -> None:
    scopes = [{}, *({"thread_id": t} for t in threads), *({"client": c} for c in CLIENTS)]
    for scope in scopes:
        for provider in (None, *PROVIDERS):
            where = {**scope, "provider": provider}
            assert ledger.spend(**where) == pytest.approx(summed(ledger, "usd", **where), abs=1e-9), where
            assert ledger.tokens(**where) == summed(ledger, "tokens", **where), where


def test_totals_follow_every_write_path(store):
    """Random replies, finished and extended messages, gateway requests, crash bills and deleted threads: after
    each step the totals equal the rows' sums, per thread, client and provider, in USD and tokens."""
    ledger = Ledger(store.db)
    rng = random.Random(17)
    threads: list[str] = []
    replies: list[str] = []
    for step in range(160):
        action = rng.choice(["thread", "reply", "reply", "finish", "extend", "gateway", "bill", "delete"])
        usage = {"tokens_in": rng.randrange(0, 500), "tokens_out": rng.randrange(0, 900)}
        cost = round(rng.uniform(0, 0.3), 6)
        provider = rng.choice(PROVIDERS)
        if action == "thread" or not threads:
            threads.append(store.create_thread(provider, "m").id)
        elif action == "reply":
            thread = rng.choice(threads)
            user = store.add_message(thread, None, "user", f"question {step}")
            reply = store.add_message(
                thread, user.id, "assistant", "answer", provider=provider, model="m", cost_usd=cost, **usage
            )
            replies.append(reply.id)
        elif action in ("finish", "extend") and replies:
            message = rng.choice(replies)
            if action == "finish":  # the usage replaced, the provider may change (a fallback answered)
                store.finish(message, provider=provider, cost_usd=cost, **usage)
            else:
                store.extend(message, " more", cost_usd=cost, **usage)
        elif action == "gateway":
            ledger.record_gateway_usage(rng.choice(CLIENTS), provider, "m", cost_usd=cost, **usage)
        elif action == "bill":
            thread = rng.choice([*threads, None])
            client = None if thread else rng.choice(CLIENTS)
            reservation = OpenReservation(provider, "m", thread_id=thread, client=client)
            reservation.id = ledger.open_reservation(reservation)
            ledger.bill_open(reservation, usage["tokens_in"], usage["tokens_out"], cost, None)
        elif action == "delete" and len(threads) > 1:
            gone = threads.pop(rng.randrange(len(threads)))
            store.delete_thread(gone)
            replies = [r for r in replies if store.db.rows("SELECT 1 FROM messages WHERE id = ?", (r,))]
            assert not store.db.rows("SELECT 1 FROM spend_totals WHERE scope = 'thread' AND key = ?", (gone,))
        assert_totals_match(ledger, threads)
    assert ledger.spend() > 0


def test_a_store_made_before_the_totals_gets_them_filled_on_open(tmp_path):
    path = tmp_path / "old.db"
    with ThreadStore(path, KEY) as old:
        ledger = Ledger(old.db)
        thread = old.create_thread("openai", "m")
        old.add_message(thread.id, None, "assistant", "a", provider="openai", cost_usd=0.25, tokens_in=10, tokens_out=5)
        ledger.record_gateway_usage("agent-a", "claude", "m", cost_usd=0.5, tokens_in=3, tokens_out=4)
        with old.db.write() as db:  # as a store made before the running totals: no table, no triggers
            for (name,) in list(db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")):
                if name.startswith("spend_totals"):
                    db.execute(f"DROP TRIGGER {name}")
            db.execute("DROP TABLE spend_totals")
        # Written while the store has no totals: the fill on the next open must count it.
        old.add_message(thread.id, None, "assistant", "b", provider="openai", cost_usd=0.125, tokens_out=7)
    with ThreadStore(path, KEY) as reopened:
        ledger = Ledger(reopened.db)
        assert ledger.spend() == 0.875
        assert ledger.spend(thread_id=thread.id) == 0.375
        assert ledger.tokens(provider="openai") == 22
        assert ledger.spend(client="agent-a", provider="claude") == 0.5
        ledger.record_gateway_usage("agent-a", "claude", "m", cost_usd=0.25)  # the triggers are back too
        assert ledger.spend(client="agent-a") == 0.75


def test_opening_a_store_that_has_its_totals_leaves_them_as_they_are(tmp_path):
    """Made once: a store opened again is not summed again (that would read every row at every start)."""
    path = tmp_path / "threads.db"
    with ThreadStore(path, KEY) as store:
        Ledger(store.db).record_gateway_usage("agent-a", "openai", "m", cost_usd=0.5)
        with store.db.write() as db:  # a total no sum of the rows gives: a refill would overwrite it
            db.execute("UPDATE spend_totals SET cost_usd = 7 WHERE scope = 'client'")
    with ThreadStore(path, KEY) as store:
        assert Ledger(store.db).spend(client="agent-a") == 7


def test_totals_made_by_another_version_are_made_again(tmp_path):
    """A trigger whose text differs from this version's (an older or newer definition) is replaced, and the totals
    summed again from the rows, so a change of the triggers reaches stores made before it."""
    path = tmp_path / "threads.db"
    with ThreadStore(path, KEY) as store:
        Ledger(store.db).record_gateway_usage("agent-a", "openai", "m", cost_usd=0.5)
        with store.db.write() as db:  # another definition: it counts nothing
            db.execute("DROP TRIGGER spend_totals_gateway_usage_insert")
            db.execute(
                "CREATE TRIGGER spend_totals_gateway_usage_insert AFTER INSERT ON gateway_usage BEGIN SELECT 1; END"
            )
            db.execute("UPDATE spend_totals SET cost_usd = 7 WHERE scope = 'client'")
    with ThreadStore(path, KEY) as store:
        ledger = Ledger(store.db)
        assert ledger.spend(client="agent-a") == 0.5  # summed again from the rows
        ledger.record_gateway_usage("agent-a", "openai", "m", cost_usd=0.25)  # this version's trigger counts it
        assert ledger.spend(client="agent-a") == 0.75


def _steps(ledger: Ledger, call) -> int:
    """SQLite virtual machine steps (in hundreds) that ``call`` makes on this thread's connection."""
    count = 0

    def tick() -> bool:
        nonlocal count
        count += 1
        return False  # go on

    with ledger.db.connection() as db:
        db.set_progress_handler(tick, 100)
        try:
            call()
        finally:
            db.set_progress_handler(None)
    return count


def test_checking_a_cap_reads_the_same_whatever_the_history(store):
    """Every scope the caps read, with 40 and then 6,000 stored replies and gateway requests: the same work.
    (Summing the rows took about 150 times more steps at 6,000.)"""
    ledger = Ledger(store.db)
    thread = store.create_thread("openai", "m")

    def history(count: int) -> None:
        reply = {"provider": "openai", "model": "m", "cost_usd": 0.001, "tokens_in": 5, "tokens_out": 5}
        store.add_chain(thread.id, None, [("assistant", "a reply")] * count, **reply)
        with ledger.db.write() as db:  # one transaction: the rows record_gateway_usage writes, many at once
            db.executemany(
                "INSERT INTO gateway_usage (client, provider, model, tokens_in, tokens_out, cost_usd, created_at) "
                "VALUES ('agent-a', 'openai', 'm', 5, 5, 0.001, 0)",
                [()] * count,
            )

    def every_scope() -> None:
        for where in ({}, {"provider": "openai"}, {"thread_id": thread.id}, {"client": "agent-a"}):
            ledger.spend(**where)
            ledger.tokens(**{**where, "provider": "openai"})

    history(40)
    small = _steps(ledger, every_scope)
    history(5960)
    large = _steps(ledger, every_scope)
    assert ledger.spend() == pytest.approx(12.0)
    assert large <= small + 2, (small, large)
