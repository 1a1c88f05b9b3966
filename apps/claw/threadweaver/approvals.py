"""The approval state of a reply's tool calls, as stored with each call, and checking the user's decisions.

Every stored call carries ``approval``: ``auto`` (it ran, or was answered with an error, without asking),
``pending`` (it waits for the user), then ``approved`` or ``denied`` once the user decided. A call waits when its
tool needs approval (:mod:`.tools`) or when the turn has used up its rounds of automatic calls: a model that keeps
calling tools stops and asks instead of looping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from claw.threadweaver.providers.model import Message, ToolCall
from claw.threadweaver.store import StoredMessage
from claw.threadweaver.tools import Listing

Decision = Literal["auto", "pending", "approved", "denied"]
DENIED = "denied by the user"
NOT_RUN = "not run: it was not approved before the conversation went on"


class NotPending(Exception):
    """The message has no tool calls waiting for a decision (none, or all decided already)."""

    code = "not_pending"


class InvalidDecisions(ValueError):
    """The decisions do not name exactly the calls that wait."""

    code = "invalid_decisions"


def decide(name: str, listing: Listing, *, automatic: bool) -> Decision:
    tool = listing.tools.get(name)
    if tool is None:
        return "auto"  # nothing runs: the model is told the tool is unknown or its server is down
    return "pending" if tool.needs_approval or not automatic else "auto"


def calls_json(calls: Sequence[ToolCall], decisions: Sequence[Decision] | None = None) -> list[dict[str, Any]]:
    stored = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    if decisions is not None:
        for call, decision in zip(stored, decisions, strict=True):
            call["approval"] = decision
    return stored


def pending(message: StoredMessage) -> list[dict[str, Any]]:
    return [call for call in message.tool_calls if call.get("approval") == "pending"]


def approval_required(message: StoredMessage) -> dict[str, Any] | None:
    """The ``approval_required`` event (and API field) for a message, or None when nothing waits."""
    calls = pending(message)
    if not calls:
        return None
    return {
        "type": "approval_required",
        "message_id": message.id,
        "calls": [{"id": c["id"], "name": c["name"], "arguments": c.get("arguments") or {}} for c in calls],
    }


def check_decisions(message: StoredMessage, decisions: Mapping[str, bool]) -> None:
    waiting = {call["id"] for call in pending(message)}
    if not waiting:
        raise NotPending(f"message {message.id} has no tool calls waiting for approval")
    missing, unknown = waiting - set(decisions), set(decisions) - waiting
    if missing or unknown:
        parts = [f"no decision for {', '.join(sorted(missing))}" if missing else ""]
        parts.append(f"not waiting: {', '.join(sorted(unknown))}" if unknown else "")
        raise InvalidDecisions(
            f"decide every waiting call of message {message.id} ({', '.join(sorted(waiting))}): "
            + "; ".join(p for p in parts if p)
        )


def decided(message: StoredMessage, decisions: Mapping[str, bool]) -> list[dict[str, Any]]:
    """The message's calls with the user's decisions recorded."""
    return [
        {**call, "approval": "approved" if decisions[call["id"]] else "denied"} if call["id"] in decisions else call
        for call in message.tool_calls
    ]


def close_open_calls(messages: list[Message]) -> list[Message]:
    """Give every call without a result one saying it did not run: providers refuse a call left unanswered.

    That happens when the user writes a new message under a reply whose calls still wait for approval.
    """
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    closed: list[Message] = []
    open_calls: list[ToolCall] = []
    for message in messages:
        if message.role != "tool" and open_calls:
            closed += [Message.tool_result(c.id, c.name, NOT_RUN) for c in open_calls]
            open_calls = []
        closed.append(message)
        if message.role == "assistant":
            open_calls = [call for call in message.tool_calls if call.id not in answered]
    closed += [Message.tool_result(c.id, c.name, NOT_RUN) for c in open_calls]
    return closed
