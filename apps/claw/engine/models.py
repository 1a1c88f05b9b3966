"""What the async client answers, as pydantic models (the MCP server returns them as they are): health, pull
progress, unload and chat results. The records the dialects parse (models, loaded models, chat pieces) are plain
dataclasses in :mod:`claw.engine.records`, importable from here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from claw.engine.records import (
    ChatPart,
    Engine,
    EngineChoice,
    LoadedModel,
    Messages,
    ModelInfo,
    ToolCall,
    as_int,
    as_str,
)

__all__ = [
    "ChatChunk",
    "ChatPart",
    "ChatReply",
    "Engine",
    "EngineChoice",
    "EngineHealth",
    "LoadedModel",
    "Messages",
    "ModelInfo",
    "ProgressCallback",
    "PullProgress",
    "PullResult",
    "ToolCall",
    "UnloadResult",
    "as_int",
    "as_str",
]


class EngineHealth(BaseModel):
    url: str
    reachable: bool = Field(description="The crush node accepted a connection on the engine port")
    ready: bool = Field(description="The engine answered its API")
    engine: Engine | None = None
    version: str | None = Field(None, description="Engine version (Ollama reports one, llama.cpp does not)")
    latency_ms: float = Field(description="Time the probe took, in milliseconds")
    error_code: str | None = None
    error: str | None = None


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
