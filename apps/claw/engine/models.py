"""What the engine answers, in the engine's own terms and whichever engine answered: models, health, chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

Engine = Literal["ollama", "llamacpp"]
EngineChoice = Literal["auto", "ollama", "llamacpp"]
Messages = Sequence[Mapping[str, Any]]


class EngineHealth(BaseModel):
    url: str
    reachable: bool = Field(description="The crush node accepted a connection on the engine port")
    ready: bool = Field(description="The engine answered its API")
    engine: Engine | None = None
    version: str | None = Field(None, description="Engine version (Ollama reports one, llama.cpp does not)")
    latency_ms: float = Field(description="Time the probe took, in milliseconds")
    error_code: str | None = None
    error: str | None = None


class ModelInfo(BaseModel):
    name: str
    size_bytes: int | None = None
    family: str | None = None
    parameter_size: str | None = Field(None, description="e.g. 4.0B")
    quantization: str | None = Field(None, description="e.g. Q4_K_M")
    modified_at: str | None = None
    digest: str | None = None


class LoadedModel(BaseModel):
    name: str
    size_bytes: int | None = Field(None, description="Memory the loaded model holds")
    size_vram_bytes: int | None = Field(None, description="Part of size_bytes in GPU memory")
    context_length: int | None = None
    expires_at: str | None = Field(None, description="When the engine unloads it if unused")
    parameter_size: str | None = Field(None, description="e.g. 4.0B")
    quantization: str | None = Field(None, description="e.g. Q4_K_M")


class PullProgress(BaseModel):
    status: str
    digest: str | None = None
    total: int | None = Field(None, description="Size of this layer in bytes")
    completed: int | None = Field(None, description="Bytes of this layer downloaded")
    overall_total: int = Field(0, description="Sum of the sizes of the layers seen so far")
    overall_completed: int = Field(0, description="Bytes downloaded over all layers seen so far")


class PullResult(BaseModel):
    model: str
    status: str
    total_bytes: int


class UnloadResult(BaseModel):
    model: str
    was_loaded: bool


class ChatChunk(BaseModel):
    content: str
    done_reason: str | None = None


class ChatReply(BaseModel):
    model: str
    content: str
    done_reason: str | None = None
    duration_ms: float


ProgressCallback = Callable[[PullProgress], Awaitable[None] | None]


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
