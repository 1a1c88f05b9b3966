"""The console's appliance status panel: ``claw.status``'s cluster report, cached briefly.

Every open browser tab polls the panel; the cache keeps that from turning into a query storm on Prometheus (each
report is about a dozen queries), and a single in-flight collection is shared by concurrent requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from claw.status import Sources, collect_report, status_json


class StatusPanel:
    def __init__(self, sources: Sources, cache_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = sources
        self.cache_s = cache_s
        self._clock = clock
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached is not None and self._clock() - self._cached[0] < self.cache_s:
                return self._cached[1]
            report = status_json(await collect_report(self.sources))
            self._cached = (self._clock(), report)
            return report
