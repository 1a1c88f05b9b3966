"""Reservations survive a crash (issue #17, "spend caps must hold"): a paid or capped request's reservation is
written to the ledger before the request leaves and closed in the transaction that records its usage (or when it
cost nothing); at start, those a crash left open are billed: for the partial reply stored for them (≈len/4
tokens), else for their worst case, never more than was reserved. The process test, kill -9 mid-stream, is
``test_crash_spend.py``."""

from __future__ import annotations

import dataclasses
import gc
import logging

import pytest
from claw.threadweaver.console import CONTINUE_PROMPT, Console, Limits
from claw.threadweaver.governance import (
    DEFAULT_OUTPUT_LIMIT,
    FRAME_TOKENS,
    Attribution,
    Governance,
    PriceTable,
    SpendCapReached,
    estimate_usage,
)
from claw.threadweaver.ledger import Ledger, OpenReservation
from claw.threadweaver.providers.errors import ProviderError
from claw.threadweaver.providers.model import Message, Request, Usage
from claw.threadweaver.router import Hold, Route, Router
from claw.threadweaver.store import ReplyWriter, ThreadStore

from tests.doubles.providers import FakeOpenAI, PacedOpenAI, Reply, adapter

pytestmark = pytest.mark.anyio
PRICES = {"p": {"m": (1_000_000, 2_000_000), "*": (9_000_000, 9_000_000)}}  # model m: $1 an input token, $2 out


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "t.db", "k" * 64) as opened:
        yield opened


@pytest.fixture
def governance(store):
    return Governance(Ledger(store.db), PriceTable(PRICES), {"p": 1000.0})


def request_of(tokens: int, out: int | None = 0, text: str = "x") -> Request:
    """A request whose prompt bound is ``tokens`` (at least FRAME_TOKENS) and output limit ``out``."""
    return Request("m", [Message("user", text * (tokens - FRAME_TOKENS))], max_output_tokens=out)


def rows(governance: Governance) -> list[OpenReservation]:
    return governance.ledger.open_reservations()


def plain(entry: OpenReservation) -> OpenReservation:
    """The row without its id and time."""
    return dataclasses.replace(entry, id=0, created_at=0.0)


def open_row(governance: Governance, **fields) -> OpenReservation:
    """A reservation as a crash leaves it: written to the ledger, never closed."""
    entry = OpenReservation(**{"provider": "p", "model": "m", **fields})
    entry.id = governance.ledger.open_reservation(entry)
    return entry


# -- written before the request leaves, closed with its usage ---------------------------------------------------


def test_a_reservation_is_written_with_what_a_crash_needs(store, governance):
    thread = store.create_thread("p", "m", cap_usd=900.0)
    request = request_of(20, 5)
    where = Attribution(parent_id="u1")
    reservation = governance.reserve("p", "m", request, thread=thread, attribution=where)
    assert [plain(entry) for entry in rows(governance)] == [
        OpenReservation("p", "m", thread.id, None, "u1", None, 0, estimate_usage(request, "").input_tokens, 20, 5, 30.0)
    ]
    assert rows(governance)[0].id == reservation.row and rows(governance)[0].created_at > 0
    reservation.release()
    assert rows(governance) == [] and governance._held == {} and reservation.row is None
    reservation.release()  # again: nothing more
    # A continuation's and a gateway client's.
    extend = Attribution(message_id="r1", base_chars=7)
    held = [
        governance.reserve("p", "m", request_of(9, 1), thread=thread, attribution=extend),
        governance.reserve("p", "m", request_of(10, 2), client="c", client_cap=500.0),
    ]
    assert [plain(entry) for entry in rows(governance)] == [
        OpenReservation("p", "m", thread.id, None, None, "r1", 7, 4, 9, 1, 11.0),
        OpenReservation("p", "m", None, "c", None, None, 0, 4, 10, 2, 14.0),
    ]
    for reservation in held:
        reservation.release()


def test_what_costs_nothing_is_not_written_and_what_costs_money_always_is(store):
    free = Governance(Ledger(store.db), PriceTable({"zero": {"*": (0, 0)}}))
    for provider in ("local", "zero"):  # no price, or a price of 0: nothing to bill, nothing held
        reservation = free.reserve(provider, "m", request_of(10))
        assert reservation.row is None and reservation.amounts == {}
    assert rows(free) == [] and free._held == {}
    # A price and no cap: written all the same (a crash must not lose what it cost), the request unchanged.
    paid = Governance(Ledger(store.db), PriceTable(PRICES))
    request = request_of(10, None)
    reservation = paid.reserve("p", "m", request)
    assert reservation.request is request and reservation.amounts == {}
    assert [plain(entry) for entry in rows(paid)] == [
        OpenReservation("p", "m", None, None, None, None, 0, 4, 10, DEFAULT_OUTPUT_LIMIT, 10.0 + 2 * 4096)
    ]
    reservation.release()
    assert rows(paid) == [] and paid._held == {}
    limited = paid.reserve("p", "m", request_of(10, 3))
    assert rows(paid)[0].worst_out == 3 and rows(paid)[0].worst_usd == 16.0
    limited.release()


def test_a_refused_request_writes_nothing(store, governance):
    thread = store.create_thread("p", "m", cap_usd=5.0)
    with pytest.raises(SpendCapReached):
        governance.reserve("p", "m", request_of(10), thread=thread)
    assert rows(governance) == [] and governance._held == {}


def test_a_reservation_that_cannot_be_written_holds_nothing(store, governance, monkeypatch):
    def broken(entry):
        raise OSError("disk full")

    monkeypatch.setattr(governance.ledger, "open_reservation", broken)
    with pytest.raises(OSError, match="disk full"):
        governance.reserve("p", "m", request_of(10))
    assert governance._held == {}


def test_settling_records_the_usage_and_closes_the_reservation_in_one_transaction(store, governance):
    thread = store.create_thread("p", "m")
    reservation = governance.reserve("p", "m", request_of(10, 5), thread=thread)
    with pytest.raises(RuntimeError), governance.settling(reservation):
        store.add_message(thread.id, None, "assistant", "lost", provider="p", model="m", cost_usd=3.0)
        raise RuntimeError("the recording failed")
    # Neither happened: the reply is not stored, the reservation still open and held.
    assert store.messages(thread.id) == [] and len(rows(governance)) == 1 and reservation.row is not None
    assert governance.held(governance.caps("p")[0]) == 20.0
    with governance.settling(reservation):
        store.add_message(thread.id, None, "assistant", "kept", provider="p", model="m", cost_usd=3.0)
    assert rows(governance) == [] and reservation.row is None and governance.ledger.spend() == 3.0
    assert governance.held(governance.caps("p")[0]) == 20.0  # held until released
    reservation.release()
    assert governance._held == {}
    with governance.settling(None), governance.settling(reservation):  # nothing open: just the block
        pass
    settled = governance.reserve("p", "m", request_of(10, 5), thread=thread)
    with governance.settling(settled):
        pass
    del settled  # dropped once settled: nothing left to close, in the background or not
    gc.collect()
    assert governance._held == {} and governance._closer is None and rows(governance) == []


def test_a_dropped_reservation_is_freed_and_closed_in_the_background(store, governance):
    governance.reserve("p", "m", request_of(10))  # dropped at once
    gc.collect()
    assert governance._held == {}
    assert governance._closer is not None
    governance._closer.shutdown(wait=True)
    assert rows(governance) == []


def test_a_reservation_that_cannot_be_closed_is_logged_and_freed(store, governance, caplog):
    reservation = governance.reserve("p", "m", request_of(10))
    row = reservation.row
    store.close()
    with caplog.at_level(logging.ERROR, logger="claw.threadweaver.governance"):
        reservation.release()
    assert governance._held == {}
    assert [record.getMessage() for record in caplog.records] == [f"could not close reservation {row} in the ledger"]


async def test_a_hold_is_released_off_the_event_loop_and_an_outage_closes_its_row(store, governance):
    down, up = FakeOpenAI(), FakeOpenAI(Reply("hi", input_tokens=1, output_tokens=1))
    down.down = True
    both = Governance(Ledger(store.db), PriceTable({"a": {"*": (1, 1)}, "b": {"*": (1, 1)}}))
    router = Router({"a": adapter(down, "a"), "b": adapter(up, "b")}, both)
    thread = store.create_thread("a", "m", fallback_provider="b")
    hold = Hold(attribution=Attribution(parent_id="u1"))
    route, _ = await router.complete(thread, Request("m", [Message("user", "hi")], max_output_tokens=5), hold)
    # The outage's row is closed; the fallback's is open, with the hold's attribution, until released.
    assert route == Route("b", "m") and [(e.provider, e.parent_id) for e in rows(both)] == [("b", "u1")]
    await hold.arelease()
    assert rows(both) == [] and hold.reservation is None and hold.attribution == Attribution(parent_id="u1")
    await hold.arelease()  # nothing held: nothing to do
    with pytest.raises(ProviderError):
        await router.complete(store.create_thread("a", "m"), Request("m", [Message("user", "hi")]))
    assert rows(both) == [] and both._held == {}


# -- billed at start: what a crash left open ----------------------------------------------------------------------


def test_recover_bills_a_stream_for_its_stored_partial_reply(store, governance):
    thread = store.create_thread("p", "m", cap_usd=900.0)
    user = store.add_message(thread.id, None, "user", "tell me")
    request = Request("m", [Message("user", "tell me")], max_output_tokens=50)
    reservation = governance.reserve("p", "m", request, thread=thread, attribution=Attribution(parent_id=user.id))
    writer = ReplyWriter.start(store, thread.id, user.id, provider="p", model="m", every_chunks=1)
    writer.add("x" * 41)  # ≈10 tokens by len/4
    reservation.row = None  # the process died: nothing closed it
    fresh = Governance(Ledger(store.db), PriceTable(PRICES), {"p": 1000.0})
    [(entry, where, usage, cost)] = fresh.recover()
    assert (where, usage, cost) == ("message", Usage(5, 10), 25.0)  # prompt ≈len/4 + 4, output 10
    assert entry.thread_id == thread.id and rows(fresh) == []
    reply = store.message(writer.message.id)
    assert (reply.status, reply.content, reply.tokens_in, reply.tokens_out, reply.cost_usd) == (
        "partial", "x" * 41, 5, 10, 25.0
    )  # fmt: skip
    assert fresh.ledger.spend(thread_id=thread.id) == 25.0
    assert fresh.recover() == []  # billed once


def test_recover_never_bills_more_than_the_worst_case(store, governance):
    thread = store.create_thread("p", "m")
    user = store.add_message(thread.id, None, "user", "hi")
    open_row(governance, thread_id=thread.id, parent_id=user.id, prompt_tokens=90, worst_in=9, worst_out=3,
             worst_usd=4.0)  # fmt: skip
    store.add_message(thread.id, user.id, "assistant", "y" * 400, status="partial", provider="p", model="m")
    [(_entry, where, usage, cost)] = governance.recover()
    # 9 in and 3 out at most (the reservation's worst case), and at most what was reserved in USD.
    assert (where, usage, cost) == ("message", Usage(9, 3), 4.0)
    entry = open_row(governance, thread_id=thread.id, parent_id=user.id, prompt_tokens=2, worst_in=9, worst_out=30,
                     worst_usd=100.0)  # fmt: skip
    later = store.add_message(thread.id, user.id, "assistant", "z" * 13, status="partial", provider="p", model="m")
    [(billed, where, usage, cost)] = governance.recover()
    assert (billed.id, where, usage, cost) == (entry.id, "message", Usage(2, 3), 8.0)
    assert store.message(later.id).cost_usd == 8.0


def test_recover_bills_the_worst_case_when_nothing_stored_is_its(store, governance):
    thread = store.create_thread("p", "m")
    user = store.add_message(thread.id, None, "user", "hi")
    # Older than the reservation, billed already, another provider's, under another parent: none is its reply.
    store.add_message(thread.id, user.id, "assistant", "old", status="partial", provider="p", model="m")
    entry = open_row(governance, thread_id=thread.id, parent_id=user.id, prompt_tokens=3, worst_in=10, worst_out=20,
                     worst_usd=50.0)  # fmt: skip
    store.add_message(thread.id, user.id, "assistant", "paid", status="partial", provider="p", model="m", tokens_in=1)
    store.add_message(thread.id, user.id, "assistant", "other", status="partial", provider="q", model="m")
    store.add_message(thread.id, None, "assistant", "elsewhere", status="partial", provider="p", model="m")
    before = {m.id for m in store.messages(thread.id)}
    [(billed, where, usage, cost)] = governance.recover()
    assert (billed.id, where, usage, cost) == (entry.id, "thread", Usage(10, 20), 50.0)
    [bill] = [m for m in store.messages(thread.id) if m.id not in before]
    assert (bill.role, bill.parent_id, bill.status, bill.content) == ("assistant", user.id, "partial", "")
    assert (bill.provider, bill.model, bill.tokens_in, bill.tokens_out, bill.cost_usd) == ("p", "m", 10, 20, 50.0)
    # A request with no parent (none recorded) is billed at the top of its thread.
    open_row(governance, thread_id=thread.id, worst_in=1, worst_out=1, worst_usd=3.0)
    [(_entry, where, _usage, _cost)] = governance.recover()
    assert where == "thread" and governance.ledger.spend(thread_id=thread.id) == 53.0


def test_recover_pairs_concurrent_requests_with_their_replies_in_order(store, governance):
    thread = store.create_thread("p", "m")
    user = store.add_message(thread.id, None, "user", "hi")
    # The first bill is 0 tokens (a prompt counted 0, 3 characters): its reply looks unbilled still, and is not
    # taken twice all the same.
    first = open_row(governance, thread_id=thread.id, parent_id=user.id, prompt_tokens=0, worst_in=5, worst_out=50,
                     worst_usd=500.0)  # fmt: skip
    second = open_row(governance, thread_id=thread.id, parent_id=user.id, prompt_tokens=1, worst_in=5, worst_out=50,
                      worst_usd=500.0)  # fmt: skip
    replies = [
        store.add_message(thread.id, user.id, "assistant", text, status="partial", provider="p", model="m")
        for text in ("a" * 3, "b" * 16)
    ]
    billed = governance.recover()
    assert [(entry.id, usage, cost) for entry, _where, usage, cost in billed] == [
        (first.id, Usage(0, 0), 0.0),
        (second.id, Usage(1, 4), 9.0),
    ]
    assert [store.message(r.id).tokens_out for r in replies] == [0, 4]


def test_recover_bills_a_continuation_onto_the_message_it_continues(store, governance):
    thread = store.create_thread("p", "m")
    reply = store.add_message(thread.id, None, "assistant", "Once", provider="p", model="m", tokens_out=1,
                              cost_usd=2.0)  # fmt: skip
    open_row(governance, thread_id=thread.id, message_id=reply.id, base_chars=4, prompt_tokens=6, worst_in=20,
             worst_out=40, worst_usd=100.0)  # fmt: skip
    store.append(reply.id, " upon a")  # 7 characters of continuation: 1 token
    [(_entry, where, usage, cost)] = governance.recover()
    assert (where, usage, cost) == ("message", Usage(6, 1), 8.0)
    continued = store.message(reply.id)
    assert (continued.content, continued.tokens_in, continued.tokens_out, continued.cost_usd) == (
        "Once upon a", 6, 2, 10.0
    )  # fmt: skip
    # Nothing of it stored: its worst case, on the same message.
    open_row(governance, thread_id=thread.id, message_id=reply.id, base_chars=11, prompt_tokens=6, worst_in=20,
             worst_out=40, worst_usd=100.0)  # fmt: skip
    [(_entry, where, usage, cost)] = governance.recover()
    assert (where, usage, cost) == ("message", Usage(20, 40), 100.0)
    assert store.message(reply.id).cost_usd == 110.0


def test_recover_bills_the_gateway_and_deleted_threads_where_the_caps_count_them(store, governance):
    open_row(governance, client="agent", prompt_tokens=2, worst_in=3, worst_out=4, worst_usd=11.0)
    gone = store.create_thread("p", "m")
    open_row(governance, thread_id=gone.id, parent_id="u", worst_in=1, worst_out=1, worst_usd=3.0)
    store.delete_thread(gone.id)
    open_row(governance, worst_in=1, worst_out=2, worst_usd=5.0)  # neither a thread nor a client
    assert [where for _entry, where, _usage, _cost in governance.recover()] == ["gateway", "retired", "retired"]
    usage = governance.ledger.gateway_usage()["agent"]
    assert (usage["cost_usd"], usage["tokens_in"], usage["tokens_out"], usage["requests"]) == (11.0, 3, 4, 1)
    status = governance.ledger.db.rows("SELECT status FROM gateway_usage")
    assert status == [("recovered",)]
    assert governance.ledger.spend(provider="p") == 19.0 and governance.ledger.spend(client="agent") == 11.0
    assert governance.ledger.tokens(provider="p") == 7 + 2 + 3


def test_a_free_request_under_a_client_token_cap_is_written_and_billed_after_a_crash(store):
    governance = Governance(Ledger(store.db))  # a free provider (a local engine): only the client's cap in tokens
    assert governance.reserve("crush", "m", request_of(10, 2), client="c").row is None  # uncapped: nothing to bill
    held = governance.reserve("crush", "m", request_of(10, 2), client="c", client_cap_tokens=20)
    assert [plain(entry) for entry in rows(governance)] == [
        OpenReservation("crush", "m", None, "c", None, None, 0, 4, 10, 2, 0.0)
    ]
    # The process dies with it in flight; at start the next one bills its worst case to the client, in tokens.
    restarted = Governance(Ledger(store.db))
    [(_entry, where, usage, cost)] = restarted.recover()
    assert (where, usage, cost) == ("gateway", Usage(10, 2), 0.0)
    assert rows(restarted) == [] and restarted.ledger.tokens(client="c") == 12
    with pytest.raises(SpendCapReached, match="would be exceeded") as refused:  # 12 of 20 spent: 8 left
        restarted.reserve("crush", "m", request_of(9), client="c", client_cap_tokens=20)
    assert refused.value.code == "token_cap_reached" and refused.value.spent == 12.0
    held.release()


# -- the console: every way a turn ends closes its reservation ----------------------------------------------------


def make_console(store, fake, caps=None):
    governance = Governance(Ledger(store.db), PriceTable({"openai": {"*": (1, 1)}}), caps or {})
    router = Router({"openai": adapter(fake, "openai")}, governance)
    return Console(store, router, governance, limits=Limits(max_output_tokens=90))


async def test_every_turn_closes_its_reservation(store):
    fake = PacedOpenAI(Reply("one two three four five six"), delay=0.01)
    console = make_console(store, fake, caps={"openai": 1.0})
    thread = store.create_thread("openai", "gpt-x", cap_usd=1.0)
    turn = await console.post(thread.id, "hi")  # whole
    assert rows(console.governance) == []
    events = await console.stream(thread.id, "again", root=True)  # streamed
    async for _event in events:
        pass
    assert rows(console.governance) == []
    events = await console.stream(thread.id, "and cut", root=True)  # cut short by the client
    async for event in events:
        if event["type"] == "chunk":
            break
    await events.aclose()
    assert rows(console.governance) == []
    fake.down = True  # a provider that is down: nothing to bill, the row closed all the same
    with pytest.raises(ProviderError):
        await console.post(thread.id, "down", root=True)
    events = await console.stream(thread.id, "down", root=True)
    assert [event["type"] async for event in events][-1] == "error"
    assert rows(console.governance) == [] and console.governance._held == {}
    fake.down = False
    fake.replies = [Reply(" and the rest")]
    continued = await console.continue_reply(thread.id, turn.reply.id)
    assert continued.reply.content == "one two three four five six and the rest"
    assert rows(console.governance) == [] and console.governance._held == {}


async def test_a_turn_in_flight_has_its_reservation_attributed(store):
    fake = PacedOpenAI(Reply("one two three four five six"), delay=0.05)
    console = make_console(store, fake, caps={"openai": 1.0})
    thread = store.create_thread("openai", "gpt-x")
    events = await console.stream(thread.id, "hi")
    user = (await anext(events))["message_id"]
    [entry] = rows(console.governance)
    assert (entry.thread_id, entry.parent_id, entry.message_id, entry.worst_out) == (thread.id, user, None, 90)
    async for _event in events:
        pass
    reply = store.latest_leaf(thread.id)
    events = await console.continue_stream(thread.id, reply.id)
    [entry] = rows(console.governance)
    assert (entry.parent_id, entry.message_id, entry.base_chars) == (None, reply.id, len(reply.content))
    expected = Request("gpt-x", [Message("user", "hi"), Message("assistant", reply.content),
                                 Message("user", CONTINUE_PROMPT)])  # fmt: skip
    assert entry.prompt_tokens == estimate_usage(expected, "").input_tokens
    async for _event in events:
        pass
    assert rows(console.governance) == []
