"""One turn of a conversation: store the user's message, check caps, run hooks, call the provider (through the
router), store the reply with its usage and cost.

The order is the contract: the user's message is committed first, so no failure after it (cap, hook, provider,
a crash mid-stream) loses it; a failure is stored in the thread as a ``note`` under the user's message, with
the one-line error, and raised (or sent as the stream's ``error`` event).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from claw.threadweaver.governance import Governance, SpendCapReached, trim_history
from claw.threadweaver.hooks import HookBlocked, HookContext, HookFailed, Hooks
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.providers.errors import ProviderError
from claw.threadweaver.providers.model import Chunk, Message, Request, ToolCall, Usage
from claw.threadweaver.router import Route, Router
from claw.threadweaver.store import ReplyWriter, StoredMessage, Thread, ThreadStore

TurnError = (SpendCapReached, HookBlocked, HookFailed, ProviderError)


@dataclass
class Limits:
    max_output_tokens: int | None = 1024
    max_history_turns: int | None = 20
    history_token_budget: int | None = 6000


@dataclass
class Turn:
    user: StoredMessage
    reply: StoredMessage


def to_model(message: StoredMessage) -> Message:
    return Message(
        message.role,  # type: ignore[arg-type]
        message.content,
        tool_calls=[ToolCall(c["id"], c["name"], c.get("arguments") or {}) for c in message.tool_calls],
        tool_call_id=message.tool_call_id,
        name=message.tool_name,
    )


def calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


@dataclass
class _Pending:
    thread: Thread
    user: StoredMessage
    request: Request
    context: HookContext = field(init=False)


class Console:
    def __init__(
        self,
        store: ThreadStore,
        router: Router,
        governance: Governance,
        hooks: Hooks | None = None,
        metrics: Metrics | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.governance = governance
        self.metrics = metrics or Metrics()
        self.hooks = hooks or Hooks(on_outcome=self.metrics.hook_outcome)
        self.limits = limits or Limits()

    # -- shared steps -------------------------------------------------------------------------------------

    def history(self, thread: Thread, leaf_id: str) -> list[Message]:
        messages = [to_model(m) for m in self.store.path(leaf_id) if m.role != "note" and m.status != "blocked"]
        if thread.system_prompt:
            messages.insert(0, Message("system", thread.system_prompt))
        return trim_history(
            messages, max_turns=self.limits.max_history_turns, budget_tokens=self.limits.history_token_budget
        )

    def note(self, thread_id: str, parent_id: str, error: Exception) -> StoredMessage:
        code = getattr(error, "code", type(error).__name__)
        return self.store.add_message(thread_id, parent_id, "note", f"{code}: {error}", status="error")

    def _begin(self, thread_id: str, text: str, parent_id: str | None, root: bool = False) -> _Pending:
        thread = self.store.thread(thread_id)
        if parent_id is None and not root:
            leaf = self.store.latest_leaf(thread_id)
            parent_id = leaf.id if leaf else None
        elif parent_id is not None:
            self.store.message(parent_id)  # NotFound for an unknown id, before anything is written
        # Committed before anything else can fail: the user's message is never lost.
        user = self.store.add_message(thread_id, parent_id, "user", text)
        request = Request(
            thread.model,
            self.history(thread, user.id),
            max_output_tokens=thread.max_output_tokens or self.limits.max_output_tokens,
        )
        pending = _Pending(thread, user, request)
        pending.context = HookContext("pre_send", thread.id, thread.provider, thread.model, request.messages)
        return pending

    async def _before_send(self, pending: _Pending) -> None:
        try:
            self.governance.check(pending.thread, pending.thread.provider)
            await self.hooks.pre_send(pending.context)
        except SpendCapReached as err:
            self.metrics.refused.labels("spend_cap").inc()
            self.note(pending.thread.id, pending.user.id, err)
            raise
        except (HookBlocked, HookFailed) as err:
            self.metrics.refused.labels(err.code).inc()
            self.note(pending.thread.id, pending.user.id, err)
            raise
        pending.request.messages = pending.context.messages

    def _failed(self, pending: _Pending, route: Route | None, err: Exception) -> None:
        provider = route.provider if route else pending.thread.provider
        if isinstance(err, ProviderError):
            self.metrics.failure(provider, err.code)
        self.note(pending.thread.id, pending.user.id, err)

    def _record(self, route: Route, usage: Usage, started: float) -> float:
        cost = self.governance.cost(route.provider, route.model, usage)
        self.metrics.reply(route.provider, usage.input_tokens, usage.output_tokens, cost, time.monotonic() - started)
        return cost

    # -- a whole reply --------------------------------------------------------------------------------------

    async def post(self, thread_id: str, text: str, parent_id: str | None = None, *, root: bool = False) -> Turn:
        """``root``: with no ``parent_id``, a new first message (a branch at the top) instead of the newest leaf."""
        pending = self._begin(thread_id, text, parent_id, root)
        await self._before_send(pending)
        started = time.monotonic()
        route: Route | None = None
        try:
            route, result = await self.router.complete(pending.thread, pending.request)
            cost = self._record(route, result.usage, started)
            context = HookContext("post_receive", thread_id, route.provider, route.model, pending.request.messages)
            context.text = result.text
            reply_text = await self.hooks.post_receive(context)
        except TurnError as err:
            if route is not None and isinstance(err, (HookBlocked, HookFailed)):
                # The provider answered and was paid; the text the user must not see is not stored.
                self.store.add_message(
                    thread_id, pending.user.id, "assistant", "", status="blocked", provider=route.provider,
                    model=route.model, tokens_in=result.usage.input_tokens, tokens_out=result.usage.output_tokens,
                    cost_usd=cost,
                )  # fmt: skip
            self._failed(pending, route, err)
            raise
        reply = self.store.add_message(
            thread_id, pending.user.id, "assistant", reply_text, tool_calls=calls_json(result.tool_calls),
            provider=route.provider, model=route.model, tokens_in=result.usage.input_tokens,
            tokens_out=result.usage.output_tokens, cost_usd=cost, finish_reason=result.finish_reason,
        )  # fmt: skip
        return Turn(pending.user, reply)

    # -- a streamed reply ---------------------------------------------------------------------------------

    async def stream(
        self, thread_id: str, text: str, parent_id: str | None = None, *, root: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Events: ``user`` (the stored message id), ``chunk`` (text), then ``done`` or ``error``.

        The user's message is stored and cap/pre_send refusals raise before the first event, so a caller can
        still answer with an HTTP error; after ``user``, failures are ``error`` events.
        """
        pending = self._begin(thread_id, text, parent_id, root)
        await self._before_send(pending)
        return self._stream(pending)

    async def _stream(self, pending: _Pending) -> AsyncIterator[dict[str, Any]]:
        thread = pending.thread
        yield {"type": "user", "message_id": pending.user.id}
        hold_back = self.hooks.has("post_receive")
        check_chunks = self.hooks.has("on_chunk")
        started = time.monotonic()
        route: Route | None = None
        writer: ReplyWriter | None = None
        last = Chunk(done=True)
        try:
            async for route, chunk in self.router.stream(thread, pending.request):
                if writer is None:
                    writer = ReplyWriter.start(
                        self.store, thread.id, pending.user.id, provider=route.provider, model=route.model
                    )
                if chunk.done:
                    last = chunk
                    continue
                piece = chunk.text
                if check_chunks:
                    context = HookContext("on_chunk", thread.id, route.provider, route.model, chunk=piece)
                    piece = await self.hooks.on_chunk(context)
                writer.add(piece)
                if piece and not hold_back:
                    yield {"type": "chunk", "text": piece}
            assert route is not None and writer is not None
            usage = last.usage or Usage()
            cost = self._record(route, usage, started)
            final_text = writer.content
            if hold_back:
                context = HookContext("post_receive", thread.id, route.provider, route.model, pending.request.messages)
                context.text = final_text
                final_text = await self.hooks.post_receive(context)
            reply = writer.finish(
                content=final_text, tool_calls=calls_json(last.tool_calls), tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens, cost_usd=cost, finish_reason=last.finish_reason,
            )  # fmt: skip
        except TurnError as err:
            if writer is not None:
                blocked = isinstance(err, (HookBlocked, HookFailed))
                # A block keeps nothing of the text; a provider failure keeps what arrived, as "partial".
                writer.finish(status="blocked", content="") if blocked else writer.finish(status="partial")
            self._failed(pending, route, err)
            yield {"type": "error", "code": err.code, "message": str(err)}
            return
        if hold_back and final_text:
            yield {"type": "chunk", "text": final_text}
        yield {
            "type": "done",
            "message_id": reply.id,
            "provider": reply.provider,
            "model": reply.model,
            "tool_calls": reply.tool_calls,
            "usage": {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out},
            "cost_usd": reply.cost_usd,
            "finish_reason": reply.finish_reason,
        }
