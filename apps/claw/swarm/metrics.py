"""The supervisor's Prometheus metrics, on a registry of their own (served by the exporters' HTTP server)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from claw.swarm.probes import SYMPTOMS, ProbeResult


class SwarmMetrics:
    def __init__(self, workers: list[str], registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.up = Gauge(
            "claw_swarm_worker_up",
            "1 when the worker's unit is active and its process not stopped",
            ["worker"],
            registry=r,
        )
        self.ready = Gauge(
            "claw_swarm_worker_ready", "1 when the worker's health URL answered in time", ["worker"], registry=r
        )
        self.given_up = Gauge(
            "claw_swarm_worker_crash_loop",
            "1 while the worker is in a crash loop and not restarted",
            ["worker"],
            registry=r,
        )
        self.failures = Gauge(
            "claw_swarm_worker_consecutive_failures",
            "Failed probes in a row (hung at hung_after)",
            ["worker"],
            registry=r,
        )
        self.probe_seconds = Gauge(
            "claw_swarm_probe_duration_seconds",
            "Time the worker's last probe took, failed or not",
            ["worker"],
            registry=r,
        )
        self.restarts = Counter("claw_swarm_restarts", "Restarts the supervisor made", ["worker"], registry=r)
        self.incidents = Counter(
            "claw_swarm_incidents", "Incidents recorded, by symptom kind", ["worker", "kind"], registry=r
        )
        for worker in workers:  # every series exists from the start, so rate() and absent() behave
            for gauge in (self.up, self.ready, self.given_up, self.failures, self.probe_seconds):
                gauge.labels(worker).set(0)
            self.restarts.labels(worker)
            for kind in SYMPTOMS:
                self.incidents.labels(worker, kind)

    def observe(self, worker: str, result: ProbeResult, failures: int) -> None:
        if result.up is not None:
            self.up.labels(worker).set(int(result.up))
        self.ready.labels(worker).set(int(result.ready))
        self.failures.labels(worker).set(failures)
        self.probe_seconds.labels(worker).set(result.duration_s)
