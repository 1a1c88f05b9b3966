"""The gateway clients' limits overridden at run time: ``gateway.limits_file``, laid over ``gateway.clients``.

The swarm's supervisor agent changes a worker's limits (``set_worker_limits``, :mod:`claw.swarm.limits`) by
rewriting a JSON file, ``{"version": 1, "clients": {"worker-<name>": {"cap_usd": ..., "max_output_tokens": ...,
"max_history_turns": ...}}}``; it does not touch ThreadWeaver's config. ThreadWeaver reads the file at start and
again whenever it changes (a ``stat`` before each gateway request and ``/spend``; the file is read in a worker
thread only when its inode, size or mtime changed), and lays its values over the configured clients:

- only :data:`KEYS` may be set (never ``providers``, ``cap_tokens`` or a key file), each validated again by
  :class:`.config.GatewayClientConfig`; ``null`` (no limit) and infinity are refused: the file may not lift a
  cap;
- only clients of the config are changed: a name the config lacks is ignored (the file cannot create clients);
- a key the file does not give keeps the configured value;
- a file that is missing, unreadable or invalid anywhere changes nothing: the limits in force stay (one warning per
  state of the file), the server goes on.

Caps are checked against the ledger and the reservations in flight at each request (:mod:`.governance`), so a new
cap applies at once and loses neither what was spent nor what requests in flight hold.

Kept free of ThreadWeaver's heavy imports: :mod:`claw.swarm.limits` takes :data:`KEYS` from here.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
KEYS = ("cap_usd", "max_output_tokens", "max_history_turns")  # what the file may set, nothing else

log = logging.getLogger("claw.threadweaver.limits")

Overrides = dict[str, dict[str, Any]]  # client name -> its overridden limits


class OverlayError(Exception):
    """The file cannot be applied; one line."""


def signature(path: Path) -> tuple[Any, ...]:
    """What tells a changed file (a rename over it changes the inode): cheap, one ``stat``."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return ("missing",)
    except OSError as err:
        return ("error", err.errno)
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def parse(text: str, clients: Collection[str]) -> tuple[Overrides, list[str]]:
    """The file's overrides for the configured ``clients``, validated, and the client names it gives that the
    config lacks (ignored). :class:`OverlayError` for anything invalid."""
    from pydantic import ValidationError

    from claw.threadweaver.config import GatewayClientConfig

    try:
        data = json.loads(text)
    except ValueError as err:
        raise OverlayError(f"not JSON: {err}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION or not isinstance(data.get("clients"), dict):
        raise OverlayError(f'expected {{"version": {FORMAT_VERSION}, "clients": {{...}}}}')
    overrides: Overrides = {}
    unknown: list[str] = []
    for name, limits in data["clients"].items():
        if not isinstance(limits, dict):
            raise OverlayError(f"clients.{name} is not a mapping")
        refused = sorted(set(limits) - set(KEYS))
        if refused:
            raise OverlayError(f"clients.{name}: {', '.join(refused)} may not be set here (only {', '.join(KEYS)})")
        if name not in clients:
            unknown.append(name)
            continue
        for key, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise OverlayError(f"clients.{name}.{key} must be a finite number, got {value!r}")
        try:
            valid = GatewayClientConfig.model_validate({"key_file": "unused", **limits})
        except ValidationError as err:
            first = err.errors()[0]
            raise OverlayError(f"clients.{name}.{first['loc'][0]}: {first['msg']}") from None
        overrides[name] = {key: getattr(valid, key) for key in limits}
    return overrides, unknown


class LimitsOverlay:
    """Watches the file; ``apply(overrides)`` is called with each valid new content (at :meth:`load`, then on
    each change). Thread-safe: :meth:`load` blocks (reads the file), :meth:`refresh` does it off the loop."""

    def __init__(self, path: Path, clients: Collection[str], apply: Callable[[Overrides], None]) -> None:
        self.path = path
        self.clients = frozenset(clients)
        self._apply = apply
        self._seen: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self.problem: str | None = None  # why the file's current state is not applied (None: applied)

    def changed(self) -> bool:
        return signature(self.path) != self._seen

    async def refresh(self) -> None:
        """The file again if it changed (a ``stat`` on the loop; the read in a worker thread)."""
        if self.changed():
            from claw.threadweaver.blocking import in_thread

            await in_thread(self.load)

    def load(self) -> None:
        """Read and apply the file if it changed since the last look (blocking)."""
        with self._lock:
            seen = signature(self.path)
            if seen == self._seen:
                return
            self._seen = seen
            try:
                text = self.path.read_text(encoding="utf-8")
                overrides, unknown = parse(text, self.clients)
            except FileNotFoundError:
                self._refuse("does not exist")
                return
            except OSError as err:
                self._refuse(f"cannot be read: {err.strerror or err}")
                return
            except OverlayError as err:
                self._refuse(f"is invalid: {err}")
                return
            if unknown:
                log.warning(
                    "limits file %s: ignored clients that are not configured: %s", self.path, ", ".join(unknown)
                )
            self._apply(overrides)
            self.problem = None
            log.info("limits file %s applied: %s", self.path, overrides or "no overrides")

    def _refuse(self, why: str) -> None:
        self.problem = why
        log.warning("limits file %s %s; the gateway clients' limits in force are kept", self.path, why)
