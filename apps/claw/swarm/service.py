"""The supervisor as a service: its parts built from the settings, /metrics served, run until stopped."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import httpx
from prometheus_client import start_http_server

from claw.exporters.serving import parse_listen
from claw.swarm.alerts import Alert, Alerts, ConsoleHook, LedAlert
from claw.swarm.config import SwarmSettings
from claw.swarm.metrics import SwarmMetrics
from claw.swarm.probes import Prober
from claw.swarm.store import IncidentStore
from claw.swarm.supervisor import Supervisor
from claw.swarm.units import SystemdUnits, UnitManager

log = logging.getLogger("claw.swarm")


def alert_channels(settings: SwarmSettings, http: httpx.AsyncClient) -> Alerts:
    channels: list[Alert] = []
    if settings.led_socket is not None:
        channels.append(LedAlert(settings.led_socket, timeout=settings.probe_timeout))
    if settings.console_notify_url is not None:
        key = None
        if settings.console_notify_key_file is not None:
            key = settings.console_notify_key_file.read_text(encoding="utf-8").strip()
        channels.append(ConsoleHook(settings.console_notify_url, http, key=key))
    return Alerts(channels)


def tls_verify(settings: SwarmSettings) -> ssl.SSLContext | bool:
    """The system's CAs, or only the console's CA when ``console_notify_ca_file`` is set (the workers are http)."""
    if settings.console_notify_ca_file is None:
        return True
    return ssl.create_default_context(cafile=settings.console_notify_ca_file)


async def serve(
    settings: SwarmSettings,
    on_start: Callable[[asyncio.Event], None] = lambda _stop: None,
    units: UnitManager | None = None,
) -> None:
    """Supervise until the event ``on_start`` receives is set (the CLI sets it on SIGTERM/SIGINT)."""
    store = IncidentStore(
        settings.store.path, max_incidents=settings.store.max_incidents, max_age_days=settings.store.max_age_days
    )
    metrics = SwarmMetrics([w.name for w in settings.workers])
    server = None
    if settings.listen is not None:
        host, port = parse_listen(settings.listen)
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
        log.info("serving /metrics on %s:%d", *server.server_address[:2])
    stop = asyncio.Event()
    on_start(stop)
    try:
        async with httpx.AsyncClient(follow_redirects=False, verify=tls_verify(settings)) as http:
            units = units or SystemdUnits(timeout=settings.restart_timeout)
            supervisor = Supervisor(
                settings, units, Prober(settings, units, http), store, alert_channels(settings, http), metrics
            )
            log.info("supervising %s", ", ".join(w.name for w in settings.workers))
            await supervisor.run(stop)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
            thread.join(5)
        store.close()
