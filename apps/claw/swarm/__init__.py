"""The supervised swarm: a heartbeat supervisor for OpenClaw worker gateways (one systemd unit per worker).

:mod:`claw.swarm.config` (settings and the restart deadline), :mod:`claw.swarm.probes` (liveness, readiness,
synthetic turn), :mod:`claw.swarm.units` (the ``UnitManager`` protocol and systemd), :mod:`claw.swarm.policy`
(backoff and crash loops, pure), :mod:`claw.swarm.store` (incidents in SQLite FTS5), :mod:`claw.swarm.metrics`,
:mod:`claw.swarm.alerts` (LED strip and console hook) and :mod:`claw.swarm.supervisor` (the loop). See
docs/swarm.md.
"""
