"""One turn of a conversation: store the user's message, check caps, run hooks, call the provider (through the
router), store the reply with its usage and cost; when the reply calls tools, run them and ask again.

The order is the contract: the user's message is committed first, so no failure after it (cap, hook, provider,
a crash mid-stream) loses it; a failure is stored in the thread as a ``note`` under the newest message (the
user's, or the last tool result), with the one-line error, and raised (or sent as the stream's ``error`` event).

Tools: a thread with tools on offers the MCP tools (:mod:`.tools`) with every request. A reply's calls that may
run on their own are run, each result stored as a ``tool`` message chained under the reply, and the model is asked
again with them, for at most ``max_tool_rounds`` rounds. A call that needs the user's approval (or any call once
the rounds are used up) ends the turn: the reply keeps its ``pending`` calls until :meth:`Console.approve` runs or
denies them and goes on with the turn.

Continuing a reply (:meth:`Console.continue_reply`): the reply's history, the reply last, and an instruction
(:data:`CONTINUE_PROMPT`) go to the provider and model that wrote it; the answer is appended to the same message,
streamed and stored as any reply is, under the same caps, reservation and hooks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from claw.threadweaver import approvals
from claw.threadweaver.blocking import in_thread, in_thread_shielded
from claw.threadweaver.governance import (
    Attribution,
    Governance,
    SpendCapReached,
    estimate_usage,
    trim_history,
    usage_or_estimate,
)
from claw.threadweaver.hooks import HookBlocked, HookContext, HookFailed, Hooks, ReplyFilter
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.providers.errors import ProviderError
from claw.threadweaver.providers.model import Chunk, Message, Request, ToolCall, Usage
from claw.threadweaver.router import Hold, Route, Router
from claw.threadweaver.store import NotFound, ReplyWriter, StoredMessage, Thread, ThreadStore
from claw.threadweaver.tools import Listing, ToolCatalogue, ToolOutcome, split_name

TurnError = (SpendCapReached, HookBlocked, HookFailed, ProviderError)


def _empty_cut(message: StoredMessage) -> bool:
    """A reply cut short before its first chunk (stored only to carry the prompt's bill)."""
    cut = message.role == "assistant" and message.status == "partial"
    return cut and not message.content and not message.tool_calls


class NotRegenerable(ValueError):
    """Regenerating a message that is not an assistant's reply."""

    code = "not_regenerable"


class NotContinuable(ValueError):
    """Continuing a message that is not a reply with text to continue (HTTP 422)."""

    code = "not_continuable"
    status = 422


class ReplyAnswered(NotContinuable):
    """Continuing a reply the conversation went on from: it would change what the later messages answered (409)."""

    code = "reply_answered"
    status = 409


class ReplyBusy(NotContinuable):
    """Continuing a reply that a stream or another continuation is writing right now (409)."""

    code = "reply_busy"
    status = 409


# What a continuation asks, after the reply it continues (sent, never stored).
CONTINUE_PROMPT = (
    "Continue your last reply from exactly where it stopped, even mid-sentence or mid-word. Write only the rest of "
    "it: do not repeat anything already written and do not mention the interruption."
)


@dataclass
class Limits:
    max_output_tokens: int | None = 1024
    max_history_turns: int | None = 20
    history_token_budget: int | None = 6000


@dataclass
class Turn:
    user: StoredMessage | None  # None for the continuation after an approval
    reply: StoredMessage  # the last assistant message (with its pending calls when approval is required)
    messages: list[StoredMessage] = field(default_factory=list)  # everything stored in this turn, oldest first
    approval_required: dict[str, Any] | None = None


def _check_continuable(message: StoredMessage, later: list[StoredMessage], *, busy: bool) -> None:
    """Raise when ``message`` (with ``later``, its children other than notes) is no reply to continue."""
    if message.role != "assistant":
        raise NotContinuable(f"message {message.id} is a {message.role} message; only a reply can be continued")
    if busy:
        raise ReplyBusy(f"reply {message.id} is being written right now; continue it once that ends")
    if message.status == "blocked":
        raise NotContinuable(f"reply {message.id} was blocked by a hook and keeps no text to continue; regenerate it")
    if message.tool_calls:
        raise NotContinuable(f"reply {message.id} called tools; its turn goes on with their results, not by continuing")
    if not message.content:
        raise NotContinuable(f"reply {message.id} has no text to continue (cut before its first word); regenerate it")
    if later:
        raise ReplyAnswered(
            f"reply {message.id} has {len(later)} later message(s) answering it; continuing it would change what they "
            "answered: branch from it instead"
        )


def to_model(message: StoredMessage) -> Message:
    return Message(
        message.role,  # type: ignore[arg-type]
        message.content,
        tool_calls=[ToolCall(c["id"], c["name"], c.get("arguments") or {}) for c in message.tool_calls],
        tool_call_id=message.tool_call_id,
        name=message.tool_name,
    )


def done_event(reply: StoredMessage) -> dict[str, Any]:
    return {
        "type": "done",
        "message_id": reply.id,
        "provider": reply.provider,
        "model": reply.model,
        "tool_calls": reply.tool_calls,
        "usage": {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out},
        "cost_usd": reply.cost_usd,
        "finish_reason": reply.finish_reason,
    }


@dataclass
class _Progress:
    """A turn under way: the newest message (the next reply or note goes under it) and what was stored so far."""

    thread: Thread
    parent: StoredMessage
    user: StoredMessage | None = None
    listing: Listing | None = None  # the tools offered in this turn; None: tools are off
    stored: list[StoredMessage] = field(default_factory=list)
    request: Request | None = None  # the next request, checked against caps and pre_send hooks
    reply: StoredMessage | None = None
    approval: dict[str, Any] | None = None
    rounds: int = 0  # rounds of automatic tool calls so far
    hold: Hold = field(default_factory=Hold)  # the next request's reservation against the caps
    continues: StoredMessage | None = None  # the reply the next request continues (its text is appended to it)
    writing: str | None = None  # the stored reply this turn is writing now (for ReplyBusy)

    def add(self, message: StoredMessage) -> None:
        self.stored.append(message)
        self.parent = message

    def turn(self) -> Turn:
        assert self.reply is not None
        return Turn(self.user, self.reply, self.stored, self.approval)


class Console:
    def __init__(
        self,
        store: ThreadStore,
        router: Router,
        governance: Governance,
        hooks: Hooks | None = None,
        metrics: Metrics | None = None,
        limits: Limits | None = None,
        tools: ToolCatalogue | None = None,
        max_tool_rounds: int = 4,
    ) -> None:
        self.store = store
        self.router = router
        self.governance = governance
        self.metrics = metrics or Metrics()
        self.hooks = hooks or Hooks(on_outcome=self.metrics.hook_outcome)
        self.limits = limits or Limits()
        self.tools = tools or ToolCatalogue({})
        self.max_tool_rounds = max_tool_rounds
        # Replies being written by a stream or a continuation, with their turn (gone with it if it is dropped).
        self._writing: weakref.WeakValueDictionary[str, _Progress] = weakref.WeakValueDictionary()

    @property
    def tools_default(self) -> bool:
        """A new thread offers tools when any MCP server is configured."""
        return bool(self.tools.servers)

    # -- shared steps -------------------------------------------------------------------------------------

    async def history(self, thread: Thread, leaf_id: str) -> list[Message]:
        path = await in_thread(self.store.path, leaf_id)
        # A reply cut short before any text (its prompt was billed) is not part of the conversation.
        messages = [to_model(m) for m in path if m.role != "note" and m.status != "blocked" and not _empty_cut(m)]
        messages = approvals.close_open_calls(messages)
        if thread.system_prompt:
            messages.insert(0, Message("system", thread.system_prompt))
        return trim_history(
            messages, max_turns=self.limits.max_history_turns, budget_tokens=self.limits.history_token_budget
        )

    async def note(self, thread_id: str, parent_id: str, error: Exception) -> StoredMessage:
        code = getattr(error, "code", type(error).__name__)
        return await in_thread(self.store.add_message, thread_id, parent_id, "note", f"{code}: {error}", status="error")

    def _begin(self, thread_id: str, text: str, parent_id: str | None, root: bool) -> tuple[Thread, StoredMessage]:
        """The thread and the user's message stored under ``parent_id`` (or the newest leaf): one worker call."""
        thread = self.store.thread(thread_id)
        if parent_id is None and not root:
            leaf = self.store.latest_leaf(thread_id)
            parent_id = leaf.id if leaf else None
        elif parent_id is not None:
            parent = self.store.message(parent_id)  # NotFound for an unknown id, before any write
            if parent.thread_id != thread_id:
                raise NotFound(f"no message {parent_id} in thread {thread_id}")
        # Committed before anything else can fail: the user's message is never lost.
        return thread, self.store.add_message(thread_id, parent_id, "user", text)

    async def _start(self, thread_id: str, text: str, parent_id: str | None, root: bool = False) -> _Progress:
        thread, user = await in_thread(self._begin, thread_id, text, parent_id, root)
        progress = _Progress(thread, user, user=user, stored=[user])
        if thread.tools and self.tools.servers:
            progress.listing = await self.tools.listing()  # never raises: a server that is down lists no tools
        await self._prepare(progress)
        return progress

    async def _prepare(self, progress: _Progress) -> None:
        """The next request, checked: caps and pre_send hooks run before every request, tool rounds included."""
        thread, continues = progress.thread, progress.continues
        messages = await self.history(thread, progress.parent.id)
        if continues is None:
            progress.hold.attribution = Attribution(parent_id=progress.parent.id)
        else:  # the history ends with the reply to continue
            messages.append(Message("user", CONTINUE_PROMPT))
            progress.hold.attribution = Attribution(message_id=continues.id, base_chars=len(continues.content))
        request = Request(
            thread.model,
            messages,
            tools=progress.listing.specs() if progress.listing else [],
            max_output_tokens=thread.max_output_tokens or self.limits.max_output_tokens,
        )
        context = HookContext("pre_send", thread.id, thread.provider, thread.model, request.messages)
        check = functools.partial(self.governance.check, thread.provider, thread.model, thread=thread)
        try:
            # The caps reached already are checked before the pre_send hooks run; with no such hook, nothing
            # happens in between, so the check goes with the reservation, in one worker call.
            check_apart = self.hooks.has("pre_send")
            if check_apart:
                await in_thread(check)
            await self.hooks.pre_send(context)
            request.messages = context.messages
            # Its worst case held against the caps, atomically with every request in flight, before it leaves.
            route = Route(thread.provider, thread.model)
            first = None if check_apart else check
            await self.router.reserve(route, request, progress.hold, first=first, thread=thread)
        except SpendCapReached as err:
            self.metrics.refused.labels("spend_cap").inc()
            await self.note(thread.id, progress.parent.id, err)
            raise
        except (HookBlocked, HookFailed) as err:
            self.metrics.refused.labels(err.code).inc()
            await self.note(thread.id, progress.parent.id, err)
            raise
        progress.request = request

    async def _failed(self, progress: _Progress, route: Route | None, err: Exception) -> None:
        provider = route.provider if route else progress.thread.provider
        if isinstance(err, ProviderError):
            self.metrics.failure(provider, err.code)
        await self.note(progress.thread.id, progress.parent.id, err)

    def _record(self, route: Route, usage: Usage, started: float) -> float:
        cost = self.governance.cost(route.provider, route.model, usage)
        self.metrics.reply(route.provider, usage.input_tokens, usage.output_tokens, cost, time.monotonic() - started)
        return cost

    def _calls(self, progress: _Progress, calls: list[ToolCall]) -> list[dict[str, Any]]:
        """The reply's calls as stored, each with its decision when tools are on in this turn."""
        if progress.listing is None:
            return approvals.calls_json(calls)
        automatic = progress.rounds < self.max_tool_rounds
        decisions = [approvals.decide(call.name, progress.listing, automatic=automatic) for call in calls]
        return approvals.calls_json(calls, decisions)

    def _reply_filter(self, progress: _Progress, route: Route) -> ReplyFilter:
        """The hooks a reply passes before any of it is shown or stored (:class:`.hooks.ReplyFilter`)."""
        assert progress.request is not None
        context = HookContext("reply", progress.thread.id, route.provider, route.model, progress.request.messages)
        return ReplyFilter(self.hooks, context)

    # -- the rounds of a turn -------------------------------------------------------------------------------

    async def _rounds(self, progress: _Progress, *, stream: bool) -> AsyncIterator[dict[str, Any]]:
        """Ask, run the reply's tool calls, ask again with their results, until a reply calls no tools or a call
        waits for approval. Yields the stream's events (chunks, tool calls and results); failures raise."""
        while True:
            if progress.request is None:
                await self._prepare(progress)
            try:
                if stream:  # closed here when the turn's stream is: the cut is billed before the hold goes
                    async with contextlib.aclosing(self._ask_streaming(progress)) as asking:
                        async for event in asking:
                            yield event
                else:
                    await self._ask(progress)
            finally:
                # The reply's usage is recorded (or nothing was): the caps count that.
                await progress.hold.arelease()
                if progress.writing is not None:
                    self._writing.pop(progress.writing, None)
                    progress.writing = None
            progress.request = None
            progress.continues = None  # a continuation's tool rounds are new replies
            reply = progress.reply
            assert reply is not None
            if progress.listing is None or not reply.tool_calls:
                return
            async for event in self._run_calls(progress, reply):
                yield event
            if progress.approval is not None:
                return
            progress.rounds += 1

    async def _ask(self, progress: _Progress) -> None:
        """One request as a whole reply, stored under the newest message."""
        thread, request = progress.thread, progress.request
        assert request is not None
        started = time.monotonic()
        route: Route | None = None
        try:
            route, result = await self.router.complete(thread, request, progress.hold)
            result.usage = usage_or_estimate(result.usage, progress.hold.request or request, result.text)
            cost = self._record(route, result.usage, started)
            reply_text = await self._reply_filter(progress, route).whole(result.text)
        except TurnError as err:
            if route is not None and isinstance(err, (HookBlocked, HookFailed)):
                # The provider answered and was paid; the text the user must not see is not stored.
                await in_thread(
                    self._store_reply, progress, route, "", status="blocked", tokens_in=result.usage.input_tokens,
                    tokens_out=result.usage.output_tokens, cost_usd=cost,
                )  # fmt: skip
            await self._failed(progress, route, err)
            raise
        reply = await in_thread(
            self._store_reply, progress, route, reply_text, tool_calls=self._calls(progress, result.tool_calls),
            tokens_in=result.usage.input_tokens, tokens_out=result.usage.output_tokens, cost_usd=cost,
            finish_reason=result.finish_reason,
        )  # fmt: skip
        progress.add(reply)
        progress.reply = reply

    def _store_reply(self, progress: _Progress, route: Route, text: str, **fields: Any) -> StoredMessage:
        """A whole reply stored under the newest message, or appended to the reply it continues (a blocked one
        keeps nothing and leaves that reply as it was), its usage recorded and its reservation closed in one
        transaction (blocking)."""
        with self.governance.settling(progress.hold.reservation):
            if progress.continues is None:
                return self.store.add_message(
                    progress.thread.id, progress.parent.id, "assistant", text, provider=route.provider,
                    model=route.model, **fields,
                )  # fmt: skip
            status = fields.pop("status", "complete")
            return self.store.extend(
                progress.continues.id, text, status=None if status == "blocked" else status, provider=route.provider,
                model=route.model, **fields,
            )  # fmt: skip

    def _writer(self, progress: _Progress, route: Route) -> ReplyWriter:
        """The stored reply a stream writes: a new one under the newest message, or the reply it continues."""
        if progress.continues is None:
            writer = ReplyWriter.start(
                self.store, progress.thread.id, progress.parent.id, provider=route.provider, model=route.model
            )
        else:
            writer = ReplyWriter.extend(self.store, progress.continues)
        progress.writing = writer.message.id
        self._writing[writer.message.id] = progress
        return writer

    def _settled(self, progress: _Progress, writer: ReplyWriter, **fields: Any) -> StoredMessage:
        """The stream's reply finished with its usage, its reservation closed in the same transaction (blocking)."""
        with self.governance.settling(progress.hold.reservation):
            return writer.finish(**fields)

    async def _ask_streaming(self, progress: _Progress) -> AsyncIterator[dict[str, Any]]:
        """One request as a stream of ``chunk`` events; the reply is stored as it arrives (see ReplyWriter)."""
        thread, request = progress.thread, progress.request
        assert request is not None
        started = time.monotonic()
        route: Route | None = None
        writer: ReplyWriter | None = None
        reply_filter: ReplyFilter | None = None
        last = Chunk(done=True)
        streamed = ""  # the provider's text as it arrived: what a stream cut short is billed for
        try:
            async for route, chunk in self.router.stream(thread, request, progress.hold):
                if writer is None:
                    reply_filter = self._reply_filter(progress, route)
                    writer = await in_thread(self._writer, progress, route)
                if chunk.done:
                    last = chunk
                    continue
                assert reply_filter is not None
                streamed += chunk.text
                # Filtered before it is stored or sent; held back (nothing stored yet) for post_receive hooks.
                piece = await reply_filter.chunk(chunk.text)
                if piece:
                    if writer.buffer(piece):  # to a worker thread only when a flush is due (every 250 ms)
                        await in_thread(writer.flush)
                    yield {"type": "chunk", "text": piece}
            assert route is not None and writer is not None and reply_filter is not None
            usage = usage_or_estimate(last.usage, progress.hold.request or request, streamed)
            cost = self._record(route, usage, started)
            final_text = await reply_filter.finish()
            reply = await in_thread(
                self._settled, progress, writer, content=final_text, tool_calls=self._calls(progress, last.tool_calls),
                tokens_in=usage.input_tokens, tokens_out=usage.output_tokens, cost_usd=cost,
                finish_reason=last.finish_reason,
            )  # fmt: skip
        except TurnError as err:
            if writer is not None and reply_filter is not None:
                # A block keeps nothing of the text; a provider failure keeps what arrived, as "partial", once it
                # passed the post_receive hooks too (a hook failing on it: nothing is kept).
                kept: dict[str, Any] = {"status": "blocked", "content": ""}
                if not isinstance(err, (HookBlocked, HookFailed)):
                    with contextlib.suppress(HookBlocked, HookFailed):
                        kept = {"status": "partial", "content": await reply_filter.finish()}
                await in_thread(self._settled, progress, writer, **kept, **self._billed(progress, streamed))
            await self._failed(progress, route, err)
            raise
        except BaseException:  # the client went away (the stream was closed) or the task was cancelled
            await in_thread_shielded(self._cut_short, progress, writer, streamed)
            raise
        if reply_filter.hold_back and final_text:
            yield {"type": "chunk", "text": final_text}
        progress.add(reply)
        progress.reply = reply

    def _billed(self, progress: _Progress, text: str) -> dict[str, Any]:
        """A stream cut short, billed for what was produced: the prompt and the text that arrived, estimated
        (:func:`.governance.estimate_usage`); counted in the metrics too."""
        route, sent = progress.hold.route, progress.hold.request
        if route is None or sent is None:
            return {}
        usage = estimate_usage(sent, text)
        cost = self.governance.cost(route.provider, route.model, usage)
        self.metrics.usage(route.provider, usage.input_tokens, usage.output_tokens, cost)
        return {"tokens_in": usage.input_tokens, "tokens_out": usage.output_tokens, "cost_usd": cost}

    def _cut_short(self, progress: _Progress, writer: ReplyWriter | None, text: str) -> None:
        """The stream's reply kept as ``partial`` with its bill (blocking); a request sent but cut before its
        first chunk: an empty ``partial`` reply carries the prompt's bill (it is left out of the history), or the
        reply it continues does. The reservation is closed in the same transaction."""
        route = progress.hold.route
        with self.governance.settling(progress.hold.reservation):
            if writer is not None:
                writer.finish(status="partial", **self._billed(progress, text))
            elif progress.hold.sent and route is not None and progress.continues is not None:
                self.store.extend(progress.continues.id, **self._billed(progress, text))
            elif progress.hold.sent and route is not None:
                self.store.add_message(
                    progress.thread.id, progress.parent.id, "assistant", "", status="partial",
                    provider=route.provider, model=route.model, **self._billed(progress, text),
                )  # fmt: skip

    # -- tool calls -----------------------------------------------------------------------------------------

    async def _run_calls(self, progress: _Progress, reply: StoredMessage) -> AsyncIterator[dict[str, Any]]:
        """Announce every call of a fresh reply, run those decided ``auto``; the others make the turn wait."""
        for call in reply.tool_calls:
            yield {
                "type": "tool_call",
                "message_id": reply.id,
                "id": call["id"],
                "name": call["name"],
                "arguments": call.get("arguments") or {},
                "needs_approval": call.get("approval") == "pending",
            }
        for call in reply.tool_calls:
            if call.get("approval") == "auto":
                yield await self._answer(progress, call, await self._call(progress, call))
        progress.approval = approvals.approval_required(reply)

    async def _call(self, progress: _Progress, call: dict[str, Any]) -> ToolOutcome:
        assert progress.listing is not None
        return await self.tools.call(progress.listing, call["name"], call.get("arguments") or {})

    async def _answer(self, progress: _Progress, call: dict[str, Any], outcome: ToolOutcome) -> dict[str, Any]:
        """Store a call's result as a ``tool`` message under the newest message; the ``tool_result`` event."""
        self.metrics.tool_call(outcome.server, outcome.tool, outcome.outcome)
        result = await in_thread(
            self.store.add_message, progress.thread.id, progress.parent.id, "tool", outcome.content,
            tool_call_id=call["id"], tool_name=call["name"], status="error" if outcome.is_error else "complete",
        )  # fmt: skip
        progress.add(result)
        return {
            "type": "tool_result",
            "message_id": result.id,
            "id": call["id"],
            "name": call["name"],
            "content": outcome.content,
            "is_error": outcome.is_error,
        }

    # -- a whole turn -----------------------------------------------------------------------------------------

    async def post(self, thread_id: str, text: str, parent_id: str | None = None, *, root: bool = False) -> Turn:
        """``root``: with no ``parent_id``, a new first message (a branch at the top) instead of the newest leaf."""
        progress = await self._start(thread_id, text, parent_id, root)
        async for _event in self._rounds(progress, stream=False):
            pass
        return progress.turn()

    async def stream(
        self, thread_id: str, text: str, parent_id: str | None = None, *, root: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """Events: ``user`` (the stored message id), then ``chunk`` (text), ``tool_call`` and ``tool_result`` as the
        rounds go, and last ``done`` (the final reply), ``approval_required`` or ``error``.

        The user's message is stored and cap/pre_send refusals raise before the first event, so a caller can
        still answer with an HTTP error; after ``user``, failures are ``error`` events.
        """
        progress = await self._start(thread_id, text, parent_id, root)
        assert progress.user is not None
        first = {"type": "user", "message_id": progress.user.id}
        return self._events(progress, self._rounds(progress, stream=True), first)

    async def _events(
        self, progress: _Progress, events: AsyncIterator[dict[str, Any]], first: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """A turn's events with its end: ``approval_required`` or ``done`` (once, for the whole turn), or ``error``."""
        if first is not None:
            yield first
        try:
            async with contextlib.aclosing(events):  # a client that went away closes the rounds (and bills them)
                async for event in events:
                    yield event
        except TurnError as err:
            yield {"type": "error", "code": err.code, "message": str(err)}
            return
        assert progress.reply is not None
        yield progress.approval or done_event(progress.reply)

    # -- regenerating a reply --------------------------------------------------------------------------------

    async def regenerate(self, thread_id: str, message_id: str) -> Turn:
        """Ask again for an assistant message: a new reply under the same parent (a sibling: a branch), with the
        thread's provider and model as they are now; the old reply stays. Caps and hooks apply as for any turn."""
        progress = await self._redo(thread_id, message_id)
        async for _event in self._rounds(progress, stream=False):
            pass
        return progress.turn()

    async def regenerate_stream(self, thread_id: str, message_id: str) -> AsyncIterator[dict[str, Any]]:
        """:meth:`regenerate` as the events of :meth:`stream`, without ``user`` (refusals raise first)."""
        progress = await self._redo(thread_id, message_id)
        return self._events(progress, self._rounds(progress, stream=True))

    async def _redo(self, thread_id: str, message_id: str) -> _Progress:
        thread = await in_thread(self.store.thread, thread_id)
        message = await in_thread(self.store.message, message_id)
        if message.thread_id != thread_id:
            raise NotFound(f"no message {message_id} in thread {thread_id}")
        if message.role != "assistant" or message.parent_id is None:
            raise NotRegenerable(f"message {message_id} is a {message.role} message; only a reply can be regenerated")
        progress = _Progress(thread, await in_thread(self.store.message, message.parent_id))
        if thread.tools and self.tools.servers:
            progress.listing = await self.tools.listing()
        await self._prepare(progress)
        return progress

    # -- continuing a reply ----------------------------------------------------------------------------------

    async def continue_reply(self, thread_id: str, message_id: str) -> Turn:
        """Ask for the rest of a reply (one cut by the output limit, an abort or a crash): the provider and model
        that wrote it get its history, the reply last, and :data:`CONTINUE_PROMPT`; the answer is appended to the
        same message, its usage and cost added to the reply's. Caps, hooks and tools apply as for any turn; a
        refusal raises before anything is sent (a cap's is stored as a note under the reply)."""
        progress = await self._extend(thread_id, message_id)
        async for _event in self._rounds(progress, stream=False):
            pass
        return progress.turn()

    async def continue_stream(self, thread_id: str, message_id: str) -> AsyncIterator[dict[str, Any]]:
        """:meth:`continue_reply` as the events of :meth:`stream` (``chunk`` events carry the continuation only;
        ``done`` names the continued message), without ``user``; refusals raise first."""
        progress = await self._extend(thread_id, message_id)
        return self._events(progress, self._rounds(progress, stream=True))

    async def _extend(self, thread_id: str, message_id: str) -> _Progress:
        thread = await in_thread(self.store.thread, thread_id)
        message = await in_thread(self.store.message, message_id)
        if message.thread_id != thread_id:
            raise NotFound(f"no message {message_id} in thread {thread_id}")
        later = [m for m in await in_thread(self.store.children, message_id) if m.role != "note"]
        _check_continuable(message, later, busy=message.id in self._writing)
        # The provider and model that wrote the reply (its spend stays theirs), no fallback.
        provider, model = message.provider or thread.provider, message.model or thread.model
        self.router.validate(provider)
        thread = dataclasses.replace(thread, provider=provider, model=model, fallback_provider=None)
        progress = _Progress(thread, message, continues=message, writing=message.id)
        self._writing[message.id] = progress
        try:
            if thread.tools and self.tools.servers:
                progress.listing = await self.tools.listing()
            await self._prepare(progress)
        except BaseException:
            self._writing.pop(message.id, None)
            raise
        return progress

    # -- approvals ------------------------------------------------------------------------------------------

    async def approve(self, thread_id: str, message_id: str, decisions: Mapping[str, bool]) -> Turn:
        """Run the approved calls of a reply, answer the denied ones, and go on with the turn."""
        progress, message = await self._resume(thread_id, message_id, decisions)
        async for _event in self._continue(progress, message, decisions, stream=False):
            pass
        return progress.turn()

    async def approve_stream(
        self, thread_id: str, message_id: str, decisions: Mapping[str, bool]
    ) -> AsyncIterator[dict[str, Any]]:
        """:meth:`approve` as events: a ``tool_result`` for each decided call, then as :meth:`stream`.

        Unknown ids, a message with nothing pending and incomplete decisions raise before the first event.
        """
        progress, message = await self._resume(thread_id, message_id, decisions)
        return self._events(progress, self._continue(progress, message, decisions, stream=True))

    async def _resume(
        self, thread_id: str, message_id: str, decisions: Mapping[str, bool]
    ) -> tuple[_Progress, StoredMessage]:
        thread = await in_thread(self.store.thread, thread_id)

        def decide(message: StoredMessage) -> list[dict[str, Any]]:
            if message.thread_id != thread_id:
                raise NotFound(f"no message {message_id} in thread {thread_id}")
            approvals.check_decisions(message, decisions)
            return approvals.decided(message, decisions)

        # Checked and recorded in one step under the store's write lock, before anything runs: a second request
        # for the same calls finds nothing pending (409) instead of running them twice.
        message = await in_thread(self.store.update_tool_calls, message_id, decide)
        progress = _Progress(thread, await in_thread(self._last_result, message))
        progress.listing = await self.tools.listing()
        return progress, message

    def _last_result(self, message: StoredMessage) -> StoredMessage:
        """The newest result already stored for the message's calls (its automatic ones ran before it waited)."""
        ids = {call["id"] for call in message.tool_calls}
        last = message
        while True:
            results = [m for m in self.store.children(last.id) if m.role == "tool" and m.tool_call_id in ids]
            if not results:
                return last
            last = results[0]

    async def _continue(
        self, progress: _Progress, message: StoredMessage, decisions: Mapping[str, bool], *, stream: bool
    ) -> AsyncIterator[dict[str, Any]]:
        for call in message.tool_calls:
            if call["id"] not in decisions:
                continue
            if decisions[call["id"]]:
                outcome = await self._call(progress, call)
            else:
                outcome = ToolOutcome(approvals.DENIED, "denied", *split_name(call["name"]))
            yield await self._answer(progress, call, outcome)
        async for event in self._rounds(progress, stream=stream):
            yield event
