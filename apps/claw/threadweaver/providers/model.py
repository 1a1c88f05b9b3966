"""The provider-neutral message model every adapter translates to and from.

A thread's history is a list of :class:`Message`: ``system``, ``user``, ``assistant`` (text and/or
:class:`ToolCall` s with arguments as a dict) and ``tool`` (one tool result: ``tool_call_id``, ``name``,
``content``). Adapters return a :class:`Result` or a stream of :class:`Chunk` s, the last of which carries the
finish reason, the usage and any tool calls, assembled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Message:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # role "tool": the call this result answers
    name: str | None = None  # role "tool": the tool's name

    @classmethod
    def tool_result(cls, tool_call_id: str, name: str, content: str) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name)


@dataclass
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Request:
    model: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_output_tokens: int | None = None
    temperature: float | None = None


@dataclass
class Result:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | str | None = None
    model: str | None = None


@dataclass
class Chunk:
    """A piece of a streamed reply: ``text`` as it arrives; the last chunk has ``done`` and the totals."""

    text: str = ""
    done: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: FinishReason | str | None = None


def normalize_finish(reason: str | None) -> FinishReason | str | None:
    """One vocabulary for finish reasons: OpenAI's (stop, length, tool_calls, content_filter)."""
    mapping = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "model_length": "length",
        "refusal": "content_filter",
    }
    return mapping.get(reason, reason) if reason else None
