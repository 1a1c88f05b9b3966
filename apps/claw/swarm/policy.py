"""When to restart a hung worker, and when to stop: restart backoff and crash-loop detection. Pure: times are
passed in, so tests step them by hand.

The n-th restart of a worker within the crash-loop window waits ``0`` (the first: the 60 s promise), then
``initial``, ``initial * factor``, ... capped at ``max``. A worker restarted ``crash_loop.restarts`` times within
``crash_loop.window`` seconds is in a crash loop: it is not restarted again until it is ready on its own (a person
fixed it) or the supervisor restarts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from claw.swarm.config import BackoffSettings, CrashLoopSettings


def backoff_delay(backoff: BackoffSettings, earlier_restarts: int) -> float:
    """Seconds to wait before a restart that follows ``earlier_restarts`` within the window."""
    if earlier_restarts <= 0:
        return 0.0
    return min(backoff.initial * backoff.factor ** (earlier_restarts - 1), backoff.max)


@dataclass(frozen=True)
class Decision:
    restart: bool  # False: a crash loop, leave the worker alone
    delay_s: float
    earlier_restarts: int  # within the window


@dataclass
class RestartHistory:
    """One worker's restart times (monotonic seconds) within the crash-loop window."""

    crash_loop: CrashLoopSettings
    backoff: BackoffSettings
    times: deque[float] = field(default_factory=deque)

    def recent(self, now: float) -> int:
        while self.times and self.times[0] <= now - self.crash_loop.window:
            self.times.popleft()
        return len(self.times)

    def decide(self, now: float) -> Decision:
        earlier = self.recent(now)
        if earlier >= self.crash_loop.restarts:
            return Decision(False, 0.0, earlier)
        return Decision(True, backoff_delay(self.backoff, earlier), earlier)

    def record(self, now: float) -> None:
        self.times.append(now)
