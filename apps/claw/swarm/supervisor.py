"""The heartbeat loop: probe each worker every ``probe_interval``, restart the hung ones, record and alert.

Each worker has its own task, so one slow probe never delays another worker. A worker is hung after
``hung_after`` failed probes in a row. Within ``start_grace`` of a restart only liveness failures count (the
process died or was stopped): a starting worker is not yet ready. A hung worker's last log lines are read, then
it is restarted (after the backoff the :class:`~claw.swarm.policy.RestartHistory` says) or, in a crash loop, left
alone with the alert on until it is ready again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from claw.swarm.alerts import Alert
from claw.swarm.config import SwarmSettings, WorkerSettings
from claw.swarm.metrics import SwarmMetrics
from claw.swarm.policy import RestartHistory
from claw.swarm.probes import Failure, Prober, ProbeResult
from claw.swarm.store import Incident, IncidentStore, StoreError
from claw.swarm.units import UnitError, UnitManager

log = logging.getLogger("claw.swarm")

FORGIVEN_IN_GRACE = frozenset({"not_ready", "turn_failed"})
CRASH_LOOP_ACTION = "not restarted again until it is ready on its own or the supervisor restarts"


@dataclass
class WorkerState:
    history: RestartHistory
    failures: int = 0
    grace_until: float = -math.inf
    last_turn: float = -math.inf
    crash_loop: Incident | None = None  # set while restarts are suspended
    incidents: list[Incident] = field(default_factory=list)  # this run's, newest last (tests and logs)


class Supervisor:
    def __init__(
        self,
        settings: SwarmSettings,
        units: UnitManager,
        prober: Prober,
        store: IncidentStore,
        alert: Alert,
        metrics: SwarmMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.units = units
        self.prober = prober
        self.store = store
        self.alert = alert
        self.metrics = metrics
        self.clock = clock
        # Workers may be starting with the supervisor (boot): the start grace applies from the first probe too.
        self.states = {
            w.name: WorkerState(
                RestartHistory(settings.crash_loop, settings.backoff), grace_until=clock() + settings.start_grace
            )
            for w in settings.workers
        }
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Supervise every worker until ``stop`` is set."""
        self._stop = stop
        await asyncio.gather(*(self._watch(worker) for worker in self.settings.workers))

    async def _watch(self, worker: WorkerSettings) -> None:
        while not self._stop.is_set():
            started = self.clock()
            try:
                await self.step(worker)
            except Exception:  # a supervisor that dies supervises nothing: log it and probe again
                log.exception("supervising %s failed", worker.name)
            await self._sleep(self.settings.probe_interval - (self.clock() - started))

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    async def step(self, worker: WorkerSettings) -> ProbeResult:
        """One probe of ``worker`` and whatever it calls for."""
        state = self.states[worker.name]
        now = self.clock()
        turn_due = worker.turn is not None and now - state.last_turn >= worker.turn.every
        result = await self.prober.probe(worker, turn_due=turn_due)
        if result.turn_passed:
            state.last_turn = now
        if result.failure is None:
            state.failures = 0
            if state.crash_loop is not None:
                log.info("%s is ready again: restarts resume", worker.name)
                state.crash_loop = None
                self.metrics.given_up.labels(worker.name).set(0)
                await self.alert.clear(worker.name)
        elif not (now < state.grace_until and result.failure.kind in FORGIVEN_IN_GRACE):
            state.failures += 1
            log.warning("%s: %s (%d/%d)", worker.name, result.failure, state.failures, self.settings.hung_after)
        self.metrics.observe(worker.name, result, state.failures)
        if state.crash_loop is not None:
            await self.alert.refresh(state.crash_loop, self._crash_loop_ttl)
        elif result.failure is not None and state.failures >= self.settings.hung_after:
            await self._hung(worker, state, result.failure)
        return result

    @property
    def _crash_loop_ttl(self) -> float:
        return 3 * max(self.settings.probe_interval, self.settings.probe_timeout)

    async def _hung(self, worker: WorkerSettings, state: WorkerState, failure: Failure) -> None:
        decision = state.history.decide(self.clock())
        logs = await self._logs(worker)
        if not decision.restart:
            window = self.settings.crash_loop.window
            symptom = f"crash loop: {decision.earlier_restarts} restarts within {window:g} s; last {failure}"
            state.crash_loop = await self._record(
                state, Incident(worker.name, "crash_loop", symptom, CRASH_LOOP_ACTION, logs)
            )
            self.metrics.given_up.labels(worker.name).set(1)
            log.error("%s: %s; %s", worker.name, symptom, CRASH_LOOP_ACTION)
            await self.alert.notify(state.crash_loop, self._crash_loop_ttl)
            return
        if decision.delay_s:
            log.info(
                "%s: restart %d within the window, backing off %g s",
                worker.name,
                decision.earlier_restarts + 1,
                decision.delay_s,
            )
            await self._sleep(decision.delay_s)
            if self._stop.is_set():
                return
        action = await self._restart(worker, decision.delay_s)
        state.history.record(self.clock())
        state.failures = 0
        state.grace_until = self.clock() + self.settings.start_grace
        self.metrics.restarts.labels(worker.name).inc()
        incident = await self._record(state, Incident(worker.name, failure.kind, str(failure), action, logs))
        log.warning("%s: %s; %s", worker.name, failure, action)
        await self.alert.notify(incident, self.settings.alert_hold)

    async def _restart(self, worker: WorkerSettings, delay: float) -> str:
        waited = f" after a {delay:g} s backoff" if delay else ""
        try:
            await asyncio.wait_for(self.units.restart(worker.unit), self.settings.restart_timeout)
        except asyncio.TimeoutError:
            return f"restart of {worker.unit}{waited} did not finish within {self.settings.restart_timeout:g} s"
        except UnitError as err:
            return f"restart of {worker.unit}{waited} failed: {err}"
        return f"killed and restarted {worker.unit}{waited}"

    async def _logs(self, worker: WorkerSettings) -> tuple[str, ...]:
        try:
            lines = await asyncio.wait_for(
                self.units.logs(worker.unit, self.settings.log_lines), self.settings.probe_timeout
            )
        except (UnitError, asyncio.TimeoutError) as err:
            return (f"(no log lines: {err or 'timed out'})",)
        return tuple(lines)

    async def _record(self, state: WorkerState, incident: Incident) -> Incident:
        self.metrics.incidents.labels(incident.worker, incident.kind).inc()
        try:
            incident = await asyncio.to_thread(self.store.record, incident)
        except StoreError as err:
            log.error("incident not stored: %s", err)
            incident = dataclasses.replace(incident, at=time.time())
        state.incidents.append(incident)
        del state.incidents[:-100]
        return incident
