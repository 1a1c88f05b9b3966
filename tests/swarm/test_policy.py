"""Backoff and crash loops, on hand-stepped times."""

from __future__ import annotations

from claw.swarm.config import BackoffSettings, CrashLoopSettings
from claw.swarm.policy import RestartHistory, backoff_delay


def test_backoff_grows_by_the_factor_up_to_the_cap():
    backoff = BackoffSettings(initial=5, factor=2, max=30)
    assert [backoff_delay(backoff, n) for n in range(6)] == [0, 5, 10, 20, 30, 30]


def test_restarts_within_the_window_make_a_crash_loop_and_old_ones_are_forgotten():
    history = RestartHistory(CrashLoopSettings(restarts=3, window=100), BackoffSettings(initial=1, factor=3, max=60))
    decisions = []
    for now in (0, 10, 20):
        decisions.append(history.decide(now))
        history.record(now)
    assert [(d.restart, d.delay_s) for d in decisions] == [(True, 0), (True, 1), (True, 3)]
    assert history.decide(30).restart is False
    assert history.decide(30).earlier_restarts == 3
    # the first restart leaves the window at t=100: one restart may happen again, backed off by two earlier ones
    later = history.decide(100)
    assert (later.restart, later.delay_s, later.earlier_restarts) == (True, 3, 2)
    assert history.decide(1000).delay_s == 0
