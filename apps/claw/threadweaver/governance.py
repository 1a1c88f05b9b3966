"""Money and size limits: the price table, spend caps per provider and per thread, and the history budget.

Caps are checked *before* a request is built: when the spend recorded in the ledger has reached a cap,
:class:`SpendCapReached` is raised and nothing is sent. A reply that starts under the cap may end over it (the
cost is known only afterwards); the next message is then refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claw.threadweaver.ledger import Ledger
from claw.threadweaver.providers.model import Message, Usage
from claw.threadweaver.store import Thread

CHARS_PER_TOKEN = 4


class SpendCapReached(Exception):
    code = "spend_cap_reached"

    def __init__(self, scope: str, name: str, spent: float, cap: float) -> None:
        self.scope = scope
        self.name = name
        self.spent = spent
        self.cap = cap
        if scope == "provider":
            where, fix = f"provider {name}", f"raise caps.{name} in the configuration or choose another provider"
        elif scope == "client":
            where, fix = f"gateway client {name}", f"raise gateway.clients.{name}.cap_usd in the configuration"
        else:
            where, fix = f"thread {name}", "raise the thread's cap_usd or start a new thread"
        super().__init__(f"the spend cap for {where} is reached (${spent:.4f} of ${cap:.4f}); nothing was sent; {fix}")


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


class Governance:
    def __init__(
        self, ledger: Ledger, prices: PriceTable | None = None, provider_caps: Mapping[str, float] | None = None
    ) -> None:
        self.ledger = ledger
        self.prices = prices or PriceTable()
        self.provider_caps = dict(provider_caps or {})

    def check(self, thread: Thread, provider: str) -> None:
        """Raise :class:`SpendCapReached` if ``provider``'s or ``thread``'s recorded spend has reached its cap."""
        self.check_provider(provider)
        if thread.cap_usd is not None:
            spent = self.ledger.spend(thread_id=thread.id)
            if spent >= thread.cap_usd:
                raise SpendCapReached("thread", thread.id, spent, thread.cap_usd)

    def check_provider(self, provider: str) -> None:
        """The provider's cap counts its spend in threads and through the gateway alike."""
        cap = self.provider_caps.get(provider)
        if cap is not None:
            spent = self.ledger.spend(provider=provider)
            if spent >= cap:
                raise SpendCapReached("provider", provider, spent, cap)

    def check_client(self, client: str, cap: float | None) -> None:
        """A gateway client's cap (``None``: none) over its requests to every provider."""
        if cap is not None:
            spent = self.ledger.spend(client=client)
            if spent >= cap:
                raise SpendCapReached("client", client, spent, cap)

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        return self.prices.cost(provider, model, usage)


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
