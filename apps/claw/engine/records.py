"""What the dialect parsers make of the engine's answers, as plain dataclasses: the models it has and holds in
memory, and chat pieces. No pydantic here, so the crush exporter (:mod:`claw.engine.sync`) stays as light as
it was; the MCP server's pydantic answers (:mod:`claw.engine.models`) hold these as they are and take each
field's description from the docstring under it (``use_attribute_docstrings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Engine = Literal["ollama", "llamacpp"]
EngineChoice = Literal["auto", "ollama", "llamacpp"]
Messages = Sequence[Mapping[str, Any]]

# Read by pydantic where a record is part of a pydantic model (a plain dict: ConfigDict would import pydantic).
_DOCUMENTED = {"use_attribute_docstrings": True}


@dataclass(frozen=True)
class ModelInfo:
    """A model the engine can serve (Ollama: downloaded; llama.cpp: configured)."""

    __pydantic_config__ = _DOCUMENTED

    name: str
    size_bytes: int | None = None
    family: str | None = None
    parameter_size: str | None = None
    """e.g. 4.0B"""
    quantization: str | None = None
    """e.g. Q4_K_M"""
    modified_at: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A model in the engine's memory."""

    __pydantic_config__ = _DOCUMENTED

    name: str
    size_bytes: int | None = None
    """Memory the loaded model holds"""
    size_vram_bytes: int | None = None
    """Part of size_bytes in GPU memory"""
    context_length: int | None = None
    expires_at: str | None = None
    """When the engine unloads it if unused"""
    parameter_size: str | None = None
    """e.g. 4.0B"""
    quantization: str | None = None
    """e.g. Q4_K_M"""


@dataclass
class ToolCall:
    """A tool call with decoded arguments; ``id`` is empty where the engine gives none (Ollama)."""

    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class ChatPart:
    """One parsed chat answer or streamed piece of one, in either engine's wire format.

    ``tool_calls`` are whole calls (Ollama, OpenAI without streaming); ``tool_call_deltas`` are the fragments an
    OpenAI stream sends, for :class:`claw.engine.openai.ToolCallAssembler`. Timings are Ollama's, in seconds.
    """

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_deltas: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    load_s: float | None = None
    prompt_eval_s: float | None = None
    eval_s: float | None = None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
