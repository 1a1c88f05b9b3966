"""A worker's model limits as the supervisor agent may change them: within the operator's bounds, in one file.

A worker's limits are enforced by ThreadWeaver's gateway, on its gateway client ``worker-<name>`` (roles/swarm
declares them, roles/threadweaver renders them into ``gateway.clients`` of its config). The supervisor agent does
not rewrite that config (root's, rendered by Ansible): it writes an **override file**, JSON in the same shape as
``gateway.clients`` (client name -> ``cap_usd``, ``max_output_tokens``, ``max_history_turns``), which ThreadWeaver
lays over its configured clients (``gateway.limits_file``, :mod:`claw.threadweaver.limits_overlay`, re-read when
it changes). A change is checked twice before the file changes: against the operator's :class:`Bounds`, then by
ThreadWeaver's own validator (its ``GatewayClientConfig`` model); a refused change leaves the file as it was.
The file is replaced atomically (a temporary file renamed over it), so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The file's format and the limits it may set are ThreadWeaver's, which reads it (one definition, light to import).
from claw.threadweaver.limits_overlay import FORMAT_VERSION
from claw.threadweaver.limits_overlay import KEYS as LIMITS

CLIENT_PREFIX = "worker-"  # the worker's ThreadWeaver gateway client (playbooks/group_vars: worker-<name>)


class LimitsError(Exception):
    """A refused or failed change of a worker's limits; one line, and nothing was changed."""


def client_name(worker: str) -> str:
    return f"{CLIENT_PREFIX}{worker}"


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class UsdRange(_Range):
    min: Annotated[float, Field(ge=0)] = 0.0
    max: Annotated[float, Field(ge=0, le=100_000)] = 10.0


class CountRange(_Range):
    min: Annotated[int, Field(ge=1)] = 1
    max: Annotated[int, Field(ge=1, le=10_000_000)] = 4096


class Bounds(BaseModel):
    """What the operator lets the supervisor agent set (section ``bounds`` of the swarm MCP server's settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cap_usd: UsdRange = UsdRange()
    max_output_tokens: CountRange = CountRange(min=16, max=4096)
    max_history_turns: CountRange = CountRange(min=1, max=50)

    def check(self, limits: dict[str, float | int]) -> None:
        for key, value in limits.items():
            allowed: _Range = getattr(self, key)
            if not allowed.min <= value <= allowed.max:
                raise LimitsError(
                    f"{key} {value} is outside the operator's bounds [{allowed.min}, {allowed.max}]; nothing changed"
                )


def validate_with_threadweaver(limits: dict[str, float | int]) -> None:
    """ThreadWeaver's own check of a gateway client's limits (imported here: only a change needs it)."""
    from claw.threadweaver.config import GatewayClientConfig

    try:
        GatewayClientConfig.model_validate({"key_file": "unused", **limits})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise LimitsError(f"ThreadWeaver refuses {where}: {first['msg']}; nothing changed") from None


class LimitsFile:
    """The override file: read it, or change one worker's limits in it (validated first, then replaced atomically).

    Calls block (file I/O); a lock serialises changes made through this object."""

    def __init__(self, path: Path, bounds: Bounds) -> None:
        self.path = path
        self.bounds = bounds
        self._lock = threading.Lock()

    def read(self) -> dict[str, dict[str, Any]]:
        """client name -> its overridden limits; empty when the file does not exist yet."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise LimitsError(f"cannot read the limits file {self.path}: {err}") from None
        clients = raw.get("clients") if isinstance(raw, dict) else None
        if not isinstance(clients, dict):
            raise LimitsError(f"the limits file {self.path} has no 'clients' mapping")
        return clients

    def limits(self, worker: str) -> dict[str, Any]:
        return dict(self.read().get(client_name(worker), {}))

    def set(self, worker: str, changes: dict[str, float | int]) -> dict[str, Any]:
        """Merge ``changes`` over the worker's overridden limits; return them. LimitsError, nothing written, when
        a value is outside the bounds or ThreadWeaver would refuse it."""
        unknown = sorted(set(changes) - set(LIMITS))
        if unknown:
            raise LimitsError(f"unknown limits {', '.join(unknown)}; known: {', '.join(LIMITS)}")
        if not changes:
            raise LimitsError(f"give at least one of {', '.join(LIMITS)}; nothing changed")
        self.bounds.check(changes)
        validate_with_threadweaver(changes)
        with self._lock:
            clients = self.read()
            merged = {**clients.get(client_name(worker), {}), **changes}
            clients[client_name(worker)] = merged
            self._replace({"version": FORMAT_VERSION, "clients": clients})
        return merged

    def _replace(self, content: dict[str, Any]) -> None:
        folder = self.path.parent
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        except OSError as err:
            raise LimitsError(f"cannot write the limits file in {folder}: {err.strerror or err}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(content, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            Path(temporary).chmod(0o640)  # ThreadWeaver reads it through the file's group
            Path(temporary).replace(self.path)
        except OSError as err:
            Path(temporary).unlink(missing_ok=True)
            raise LimitsError(f"cannot write the limits file {self.path}: {err.strerror or err}") from None
