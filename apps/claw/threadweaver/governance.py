"""Money and size limits: the price table, spend and token caps, reservations for requests in flight, and the
history budget.

Caps hold under any concurrency. Before a request is sent, :meth:`Governance.reserve` takes its worst case (the
prompt's token bound, :func:`prompt_bound`, plus its output limit, at the model's price) against every cap that
applies: the provider's, the thread's or the gateway client's, in USD, and the token caps (a provider's, per
thread and per client on it, and a gateway client's own over all providers, free ones included). Spend recorded
in the ledger plus what requests in flight hold plus this request's worst case must stay within each cap, checked and
held in one step under a lock; otherwise :class:`SpendCapReached` (or :class:`TokenCapReached`) is raised and
nothing is sent. Once the reply's usage is recorded the reservation is released (:meth:`Reservation.release`), so
a cap counts what was spent, not what might have been. A request that asks for no output limit while a cap
applies is sent with :data:`DEFAULT_OUTPUT_LIMIT`, so its worst case is known.

A model without a price on a provider that has prices or a USD cap is refused (:class:`ModelNotPriced`): it would
otherwise cost $0 and never reach a cap. A provider with no prices at all (a local engine) is free; give it token
caps instead.

Crashes: a reservation of a paid or capped request is also written to the ledger before the request leaves
(:class:`.ledger.OpenReservation`: who it is for, its prompt's local token count, its worst case), and deleted in
the very transaction that records the request's usage (:meth:`Governance.settling`), or when the request turned
out to cost nothing (an outage: on release). So one still there at start was in flight when the process died, and
:meth:`Governance.recover` bills it: for the partial reply stored for it (the prompt and the stored text, ≈len/4
tokens each, never more than its worst case), or for its whole worst case when nothing stored can be attributed to
it (a request answered whole, a gateway request, a stream killed before its first chunk was stored). Either way at
most what was reserved, which the caps allowed: recorded spend stays within every cap after a crash too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claw.threadweaver.ledger import Ledger, OpenReservation
from claw.threadweaver.providers.model import Message, Request, Usage
from claw.threadweaver.store import Thread

CHARS_PER_TOKEN = 4  # the estimate of what was used: about 4 characters a token
FRAME_TOKENS = 8  # the most a message's role and separators take, in the worst case
TOOLS_TOKENS = 512  # what a provider adds to a request that offers tools (Anthropic's tool prompt: ~350)
DEFAULT_OUTPUT_LIMIT = 4096  # the output limit sent with a capped request that asks for none


def _amount(value: float, unit: str) -> str:
    return f"${value:.4f}" if unit == "usd" else f"{value:.0f} tokens"


class SpendCapReached(Exception):
    """A request refused by a cap before it was sent (HTTP 402). ``unit``: ``usd`` or ``tokens``; ``in_flight``:
    what requests under way hold; ``request``: this request's worst case (0: the cap is reached already)."""

    code = "spend_cap_reached"
    status = 402

    def __init__(
        self,
        scope: str,
        name: str,
        spent: float,
        cap: float,
        *,
        unit: str = "usd",
        in_flight: float = 0.0,
        request: float = 0.0,
        provider: str | None = None,
    ) -> None:
        self.scope = scope
        self.name = name
        self.spent = spent
        self.cap = cap
        self.unit = unit
        self.in_flight = in_flight
        self.request = request
        self.provider = provider
        super().__init__(self._message())

    def _where_and_fix(self) -> tuple[str, str]:
        name, provider = self.name, self.provider
        if self.unit == "tokens":
            if self.scope == "provider":
                return f"provider {name}", f"raise token_caps.{name}.total in the configuration"
            if self.scope == "client" and provider is None:  # the client's own cap, over all providers
                return f"gateway client {name}", f"raise gateway.clients.{name}.cap_tokens in the configuration"
            if self.scope == "client":
                return f"gateway client {name} on provider {provider}", (
                    f"raise token_caps.{provider}.per_client in the configuration"
                )
            return f"thread {name} on provider {provider}", (
                f"raise token_caps.{provider}.per_thread in the configuration or start a new thread"
            )
        if self.scope == "provider":
            return f"provider {name}", f"raise caps.{name} in the configuration or choose another provider"
        if self.scope == "client":
            return f"gateway client {name}", f"raise gateway.clients.{name}.cap_usd in the configuration"
        return f"thread {name}", "raise the thread's cap_usd or start a new thread"

    def _message(self) -> str:
        where, fix = self._where_and_fix()
        kind = "spend" if self.unit == "usd" else "token"
        spent, cap = _amount(self.spent, self.unit), _amount(self.cap, self.unit)
        held = f", {_amount(self.in_flight, self.unit)} held by requests in flight" if self.in_flight else ""
        if not self.request:
            return f"the {kind} cap for {where} is reached ({spent} of {cap}{held}); nothing was sent; {fix}"
        room = _amount(max(self.cap - self.spent - self.in_flight, 0.0), self.unit)
        worst = "its prompt and output limit" + (" at the model's price" if self.unit == "usd" else "")
        return (
            f"the {kind} cap for {where} would be exceeded: this request may use up to "
            f"{_amount(self.request, self.unit)} ({worst}) and {room} is left ({spent} spent{held} of {cap}); "
            f"nothing was sent; ask for fewer output tokens, or {fix}"
        )

    def details(self) -> dict[str, Any]:
        """The error body's fields besides ``code`` and ``message``."""
        unit = self.unit
        fields: dict[str, Any] = {"scope": self.scope, "name": self.name}
        if self.provider is not None:
            fields["provider"] = self.provider
        fields.update({f"spent_{unit}": self.spent, f"cap_{unit}": self.cap, f"in_flight_{unit}": self.in_flight})
        fields[f"request_{unit}"] = self.request
        return fields


class TokenCapReached(SpendCapReached):
    code = "token_cap_reached"


class ModelNotPriced(SpendCapReached):
    """A model with no price (neither its own nor ``*``) on a provider that has prices or a USD cap (HTTP 422)."""

    code = "model_not_priced"
    status = 422

    def __init__(self, provider: str, model: str) -> None:
        self.provider_name = provider
        self.model = model
        Exception.__init__(
            self,
            f"model {model} of provider {provider} has no price, so its spend could not be counted against the caps; "
            f'nothing was sent; add prices.{provider}.{model} (or "*") to the configuration, [0, 0] if it is free',
        )

    def details(self) -> dict[str, Any]:
        return {"provider": self.provider_name, "model": self.model}


@dataclass(frozen=True)
class Price:
    input_per_m: float = 0.0
    output_per_m: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input_per_m + usage.output_tokens * self.output_per_m) / 1_000_000


class PriceTable:
    """USD per million input/output tokens, per provider and model (``"*"``: any other model of the provider)."""

    def __init__(self, table: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.table: dict[str, dict[str, Price]] = {}
        for provider, models in (table or {}).items():
            self.table[provider] = {model: self._price(value) for model, value in models.items()}

    @staticmethod
    def _price(value: Any) -> Price:
        if isinstance(value, Mapping):
            return Price(float(value.get("input", 0)), float(value.get("output", 0)))
        input_per_m, output_per_m = value
        return Price(float(input_per_m), float(output_per_m))

    def price(self, provider: str, model: str) -> Price | None:
        models = self.table.get(provider, {})
        return models.get(model) or models.get("*")

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        price = self.price(provider, model)
        return price.cost(usage) if price else 0.0


@dataclass(frozen=True)
class TokenCaps:
    """A provider's caps in tokens (input and output together; ``None``: none): over everything, per thread, and
    per gateway client. For providers that cost no money (a local engine) but whose time is worth sharing."""

    total: int | None = None
    per_thread: int | None = None
    per_client: int | None = None


@dataclass(frozen=True)
class Cap:
    """One cap a request counts against: ``scope`` (``provider``, ``thread``, ``client``) and ``name``, in ``unit``
    (``usd`` or ``tokens``); a token cap of a thread or client counts on one ``provider`` only."""

    scope: str
    name: str
    limit: float
    unit: str = "usd"
    provider: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return self.scope, self.name, self.unit, self.provider

    def refusal(self, spent: float, held: float, request: float) -> SpendCapReached:
        kind = SpendCapReached if self.unit == "usd" else TokenCapReached
        return kind(
            self.scope, self.name, spent, self.limit, unit=self.unit, in_flight=held, request=request,
            provider=self.provider,
        )  # fmt: skip


@dataclass(frozen=True)
class Attribution:
    """Where a thread's request is billed if the process dies before its usage is recorded: its reply goes under
    ``parent_id``, or continues ``message_id`` after its first ``base_chars`` characters."""

    parent_id: str | None = None
    message_id: str | None = None
    base_chars: int = 0


log = logging.getLogger(__name__)


class Reservation:
    """What one request in flight holds against its caps; :meth:`release` once its usage is recorded (again: a
    no-op; a reservation dropped without it is released when collected). ``request``: the request to send, with
    the output limit its worst case was reckoned with; ``row``: its row in the ledger's ``open_reservations``
    while open there (None: closed, or never written)."""

    def __init__(self, governance: Governance | None, amounts: dict[Any, float], request: Request) -> None:
        self.request = request
        self.amounts = amounts
        self.id = -1  # the governance's number for it, once held
        self.row: int | None = None
        self._governance = governance

    def release(self) -> None:
        governance, self._governance = self._governance, None
        if governance is not None:
            governance._release(self)

    def __del__(self) -> None:
        governance, self._governance = self._governance, None
        if governance is not None:
            governance._release(self, collected=True)


class Governance:
    def __init__(
        self,
        ledger: Ledger,
        prices: PriceTable | None = None,
        provider_caps: Mapping[str, float] | None = None,
        token_caps: Mapping[str, TokenCaps] | None = None,
    ) -> None:
        self.ledger = ledger
        self.prices = prices or PriceTable()
        self.provider_caps = dict(provider_caps or {})
        self.token_caps = dict(token_caps or {})
        self._lock = threading.RLock()  # re-entrant: a collected reservation releases itself in any thread
        self._held: dict[int, dict[Any, float]] = {}
        self._ids = itertools.count()
        self._closer: concurrent.futures.ThreadPoolExecutor | None = None  # closes rows off the event loop

    def price(self, provider: str, model: str) -> Price | None:
        """The model's price; :class:`ModelNotPriced` when its provider has prices or a USD cap but not for it."""
        price = self.prices.price(provider, model)
        if price is None and (provider in self.prices.table or provider in self.provider_caps):
            raise ModelNotPriced(provider, model)
        return price

    def caps(
        self,
        provider: str,
        thread: Thread | None = None,
        client: str | None = None,
        client_cap: float | None = None,
        client_cap_tokens: int | None = None,
    ) -> list[Cap]:
        """Every cap a request to ``provider`` for ``thread`` or gateway ``client`` (with its ``client_cap`` in USD
        and ``client_cap_tokens``, both over all providers) counts against, in the order they are checked (the
        first exceeded one is reported)."""
        caps: list[Cap] = []
        if client is not None and client_cap is not None:
            caps.append(Cap("client", client, client_cap))
        if client is not None and client_cap_tokens is not None:
            caps.append(Cap("client", client, client_cap_tokens, "tokens"))
        if provider in self.provider_caps:
            caps.append(Cap("provider", provider, self.provider_caps[provider]))
        if thread is not None and thread.cap_usd is not None:
            caps.append(Cap("thread", thread.id, thread.cap_usd))
        tokens = self.token_caps.get(provider, TokenCaps())
        if tokens.total is not None:
            caps.append(Cap("provider", provider, tokens.total, "tokens"))
        if thread is not None and tokens.per_thread is not None:
            caps.append(Cap("thread", thread.id, tokens.per_thread, "tokens", provider))
        if client is not None and tokens.per_client is not None:
            caps.append(Cap("client", client, tokens.per_client, "tokens", provider))
        return caps

    def spent(self, cap: Cap) -> float:
        """What the ledger has recorded against ``cap`` (USD or tokens)."""
        where = {{"provider": "provider", "thread": "thread_id", "client": "client"}[cap.scope]: cap.name}
        if cap.unit == "usd":
            return self.ledger.spend(**where)
        if cap.provider is not None:
            where["provider"] = cap.provider
        return float(self.ledger.tokens(**where))

    def held(self, cap: Cap) -> float:
        """What requests in flight hold against ``cap``."""
        with self._lock:
            return sum(amounts.get(cap.key, 0.0) for amounts in self._held.values())

    def check(
        self,
        provider: str,
        model: str,
        *,
        thread: Thread | None = None,
        client: str | None = None,
        client_cap: float | None = None,
        client_cap_tokens: int | None = None,
    ) -> None:
        """Raise :class:`SpendCapReached` when a cap of the request is reached already (recorded spend and
        reservations), or :class:`ModelNotPriced`: the cheap refusal before a request is even built."""
        self.price(provider, model)
        for cap in self.caps(provider, thread, client, client_cap, client_cap_tokens):
            spent, held = self.spent(cap), self.held(cap)
            if spent + held >= cap.limit:
                raise cap.refusal(spent, held, 0.0)

    def reserve(
        self,
        provider: str,
        model: str,
        request: Request,
        *,
        thread: Thread | None = None,
        client: str | None = None,
        client_cap: float | None = None,
        client_cap_tokens: int | None = None,
        attribution: Attribution | None = None,
    ) -> Reservation:
        """Hold ``request``'s worst case against every cap that applies, or raise (nothing held) when one would be
        exceeded; :class:`ModelNotPriced` for a model without a price on a priced or capped provider. A request
        that is capped or costs money is written to the ledger's open reservations too (blocking), with
        ``attribution`` (a thread's: where its reply is stored) for :meth:`recover`."""
        price = self.price(provider, model)
        caps = self.caps(provider, thread, client, client_cap, client_cap_tokens)
        paid = price is not None and price != Price()
        if not caps and not paid:
            return Reservation(None, {}, request)
        if caps and request.max_output_tokens is None:
            request = dataclasses.replace(request, max_output_tokens=DEFAULT_OUTPUT_LIMIT)
        output = DEFAULT_OUTPUT_LIMIT if request.max_output_tokens is None else request.max_output_tokens
        worst = Usage(prompt_bound(request), output)
        need = {"usd": price.cost(worst) if price else 0.0, "tokens": float(worst.input_tokens + worst.output_tokens)}
        with self._lock:
            for cap in caps:
                spent, held = self.spent(cap), self.held(cap)
                if spent + held >= cap.limit or spent + held + need[cap.unit] > cap.limit:
                    raise cap.refusal(spent, held, need[cap.unit])
            reservation = Reservation(self, {cap.key: need[cap.unit] for cap in caps}, request)
            reservation.id = next(self._ids)
            self._held[reservation.id] = reservation.amounts
        where = attribution or Attribution()
        entry = OpenReservation(
            provider, model, thread.id if thread else None, client, where.parent_id, where.message_id,
            where.base_chars, sum(map(estimate_tokens, request.messages)), worst.input_tokens, worst.output_tokens,
            need["usd"],
        )  # fmt: skip
        try:
            reservation.row = self.ledger.open_reservation(entry)
        except BaseException:
            reservation.release()
            raise
        return reservation

    def _release(self, reservation: Reservation, collected: bool = False) -> None:
        """Free what ``reservation`` holds, after closing its ledger row if it is still open (the request cost
        nothing): blocking (:meth:`.router.Hold.arelease` does it off the event loop), and held until the row is
        closed, so a crash before then bills it within the caps. One the garbage collector found (dropped without
        release: a turn never run) is freed at once and its row closed in a thread of its own, since a finalizer
        may run where the store's locks are held."""
        row, reservation.row = reservation.row, None
        if row is not None and collected:
            self._closing().submit(self._close, row)
        else:
            self._close(row)  # never raises: a failure is logged
        with self._lock:
            self._held.pop(reservation.id, None)

    def _close(self, row: int | None) -> None:
        if row is None:
            return
        try:
            self.ledger.close_reservation(row)
        except Exception:  # a store closed meanwhile: the next start bills it as left open
            log.exception("could not close reservation %s in the ledger", row)

    def _closing(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._closer is None:
                self._closer = concurrent.futures.ThreadPoolExecutor()
            return self._closer

    @contextlib.contextmanager
    def settling(self, reservation: Reservation | None) -> Iterator[None]:
        """The transaction that records a request's usage (blocking): its open reservation is closed in it too,
        so the ledger has the one or the other, never both nor neither. Release the reservation afterwards."""
        row = None if reservation is None else reservation.row
        if row is None:
            yield
            return
        with self.ledger.db.write():
            yield
            self.ledger.close_reservation(row)
        assert reservation is not None
        reservation.row = None

    def recover(self) -> list[tuple[OpenReservation, str, Usage, float]]:
        """Bill the requests a crash left in flight (at start, before serving; blocking): each open reservation
        for the partial reply stored for it (:meth:`.ledger.Ledger.stored_reply`: its prompt and that text, ≈len/4
        tokens, each at most its worst case), else for its worst case, and close it; what was billed, where."""
        billed = []
        taken: set[str] = set()
        for entry in self.ledger.open_reservations():
            stored = self.ledger.stored_reply(entry, taken)
            usage, cost, message = Usage(entry.worst_in, entry.worst_out), entry.worst_usd, None
            if stored is not None:
                message, text = stored
                taken.add(message)
                usage = Usage(
                    min(entry.prompt_tokens, entry.worst_in), min(len(text) // CHARS_PER_TOKEN, entry.worst_out)
                )
                cost = min(self.cost(entry.provider, entry.model, usage), entry.worst_usd)
            where = self.ledger.bill_open(entry, usage.input_tokens, usage.output_tokens, cost, message)
            billed.append((entry, where, usage, cost))
        return billed

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        return self.prices.cost(provider, model, usage)


def _size(text: str) -> int:
    return len(text.encode())


def prompt_bound(request: Request) -> int:
    """The most tokens ``request``'s prompt can be: one per UTF-8 byte of every message's text, tool calls and
    offered tools (a byte-level tokenizer never makes a token of less than a byte), :data:`FRAME_TOKENS` a message,
    and :data:`TOOLS_TOKENS` more when tools are offered. Some four times the usual count: a reservation is
    released when the real usage is recorded."""
    size = 0
    for message in request.messages:
        size += _size(message.content) + FRAME_TOKENS
        size += sum(_size(call.name) + _size(json.dumps(call.arguments)) for call in message.tool_calls)
    if request.tools:
        size += TOOLS_TOKENS
        size += sum(_size(json.dumps(dataclasses.asdict(tool))) for tool in request.tools)
    return size


def estimate_usage(request: Request, text: str) -> Usage:
    """A stream's usage when the provider gave none (it ended early, or the provider does not report usage):
    ≈len/4 of the prompt (:func:`estimate_tokens`) and of the text that arrived."""
    return Usage(sum(map(estimate_tokens, request.messages)), len(text) // CHARS_PER_TOKEN)


def usage_or_estimate(usage: Usage | None, request: Request, text: str) -> Usage:
    """The provider's usage, or :func:`estimate_usage` when it reported none (no usage, or all zero)."""
    if usage is not None and (usage.input_tokens or usage.output_tokens):
        return usage
    return estimate_usage(request, text)


def estimate_tokens(message: Message) -> int:
    """About len/4 tokens, counting tool call arguments, plus a few for the message frame."""
    size = len(message.content) + sum(len(c.name) + len(str(c.arguments)) for c in message.tool_calls)
    return size // CHARS_PER_TOKEN + 4


def trim_history(
    messages: Sequence[Message], *, max_turns: int | None = None, budget_tokens: int | None = None
) -> list[Message]:
    """The system messages and the newest whole turns (a user message and what follows it) that fit.

    A turn is never split (a tool call is never sent without its result). The newest turn is always kept, even
    over the budget: sending nothing is never the answer; the provider reports a context overflow precisely.
    """
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    turns: list[list[Message]] = []
    for message in rest:
        if message.role == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    budget = None if budget_tokens is None else budget_tokens - sum(map(estimate_tokens, system))
    kept: list[list[Message]] = []
    used = 0
    for turn in reversed(turns):
        size = sum(map(estimate_tokens, turn))
        if kept and (
            (max_turns is not None and len(kept) >= max_turns) or (budget is not None and used + size > budget)
        ):
            break
        kept.append(turn)
        used += size
    return system + [m for turn in reversed(kept) for m in turn]
