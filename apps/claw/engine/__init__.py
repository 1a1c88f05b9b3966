"""The crush inference engine seen from the rest of the appliance, whichever engine runs there (llama.cpp's
OpenAI-compatible server or Ollama).

* :mod:`claw.engine.errors`: the one error hierarchy (:class:`CrushError` and its precise subclasses).
* :mod:`claw.engine.models`: what the engine answers (models, loaded models, health, chat pieces).
* :mod:`claw.engine.ollama` and :mod:`claw.engine.openai`: each wire format as paths, bodies and parsers, no I/O.
* :mod:`claw.engine.client`: the async client (MCP server, ThreadWeaver, ``claw status``).
* :mod:`claw.engine.sync`: the blocking reader (the crush exporter).
"""

from claw.engine.client import EngineClient
from claw.engine.errors import (
    CrushError,
    CrushUnreachable,
    EngineDown,
    EngineError,
    EngineTimeout,
    ModelMissing,
    ModelUnavailable,
    OutOfMemory,
    UnsupportedOperation,
)
from claw.engine.models import ChatPart, EngineHealth, LoadedModel, ModelInfo, ToolCall

__all__ = [
    "ChatPart",
    "CrushError",
    "CrushUnreachable",
    "EngineClient",
    "EngineDown",
    "EngineError",
    "EngineHealth",
    "EngineTimeout",
    "LoadedModel",
    "ModelInfo",
    "ModelMissing",
    "ModelUnavailable",
    "OutOfMemory",
    "ToolCall",
    "UnsupportedOperation",
]
