"""The crush inference node seen from the claw side: an engine client with precise errors, and the exporter's
metrics as a summary. Used by the ``crush`` MCP server, the ThreadWeaver console and the OpenClaw checks."""

from claw.crush.client import EngineClient
from claw.crush.errors import (
    CrushError,
    CrushUnreachable,
    EngineDown,
    EngineError,
    EngineTimeout,
    ModelMissing,
    OutOfMemory,
    UnsupportedOperation,
)

__all__ = [
    "CrushError",
    "CrushUnreachable",
    "EngineClient",
    "EngineDown",
    "EngineError",
    "EngineTimeout",
    "ModelMissing",
    "OutOfMemory",
    "UnsupportedOperation",
]
