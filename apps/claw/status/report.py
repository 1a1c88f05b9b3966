"""One report of the whole cluster: Prometheus (nodes, services, versions, alerts, series), the engine, the LEDs.

:func:`collect_report` asks every source in parallel with short timeouts. Each source is optional and fails
softly: a section whose source failed is empty (or None) and ``Report.errors[section]`` says
``"unavailable: <reason>"``. Nothing here raises for a source that is down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from claw.engine.client import EngineClient
from claw.leds.client import LedClient
from claw.leds.protocol import DEFAULT_SOCKET
from claw.status.prometheus import DEFAULT_TIMEOUT_S, PrometheusClient, PrometheusError, parse_point

log = logging.getLogger("claw.status")

DEFAULT_LAST_UPDATE_FILE = Path("/var/lib/claw/last-update.json")
# The node's bill of materials (role release): the versions installed here, read when present.
DEFAULT_BOM_FILE = Path("/var/lib/claw/bom.json")
LEDS_TIMEOUT_S = 1.0
ENGINE_TIMEOUT_S = 3.0
SERIES_RANGE_S = 3600
SERIES_STEP_S = 60

# PromQL of each section. Raw expressions rather than the recording rules, so the last hour reads the same
# even right after the rules changed or before they were first evaluated.
NODES_QUERY = 'up{job="node"}'
SERVICES_QUERIES = {
    # The claw exporter: 1 when the unit is active (or reloading).
    "claw": "claw_unit_active",
    # node_exporter's systemd collector (every node, crush's engine included): the series of the current state.
    "node": 'node_systemd_unit_state{job="node"} == 1',
}
VERSIONS_QUERY = '{__name__=~"claw_build_info|crush_engine_info|prometheus_build_info|node_exporter_build_info"}'
LOADED_MODELS_QUERY = "crush_model_loaded_info"
SERIES_QUERIES = {
    # Whole-appliance draw, as appliance:power_watts:sum records it.
    "power_watts": "sum(claw_power_watts)",
    # GPU load of the crush node(s), 0..1.
    "gpu_load": "avg(crush_gpu_load_ratio)",
    # Generation throughput from llama-server's own /metrics, when Prometheus scrapes it (an extra scrape config);
    # neither exporter counts tokens yet, so this series is empty otherwise.
    "tokens_per_s": "sum(rate(llamacpp:tokens_predicted_total[5m]))",
    # The hottest thermal zone of the cluster.
    "temperature_c": 'max({__name__=~"claw_temperature_celsius|crush_temperature_celsius"})',
}
CRITICAL = "critical"

T = TypeVar("T")


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    up: bool


@dataclass(frozen=True)
class Target:
    """A scrape target of any job, with Prometheus' own reason when the last scrape failed."""

    job: str
    node: str
    instance: str
    health: str  # up, down or unknown (not scraped yet)
    error: str = ""


@dataclass(frozen=True)
class Service:
    node: str
    unit: str
    state: str  # systemd ActiveState: active, inactive, failed, activating, ...
    active: bool


@dataclass(frozen=True)
class Version:
    component: str  # claw, prometheus, node_exporter, or the engine (ollama, llamacpp)
    node: str
    version: str


@dataclass(frozen=True)
class Model:
    name: str
    loaded: bool


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    summary: str
    node: str = ""
    active_at: str = ""


@dataclass(frozen=True)
class Leds:
    state: str  # the winning layer's state (alert_firing, idle, ...) or "off"
    detail: str


@dataclass(frozen=True)
class LastUpdate:
    """What the last playbook run wrote to last-update.json."""

    time: str
    playbook: str
    version: str


@dataclass
class Report:
    generated_at: float
    prometheus_url: str | None
    engine_url: str | None = None
    nodes: list[Node] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    leds: Leds | None = None
    last_update: LastUpdate | None = None
    # This node's bill of materials as the playbooks wrote it (None when absent).
    bom: dict[str, Any] | None = None
    # name -> [[unix time, value], ...] over the last hour, oldest first
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # section -> "unavailable: <reason>"
    errors: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Why the cluster is not healthy; empty when every node is up and no critical alert fires."""
        found = []
        if "prometheus" in self.errors:
            return [f"Prometheus {self.errors['prometheus']}"]
        if "nodes" in self.errors:
            found.append(f"nodes {self.errors['nodes']}")
        elif not self.nodes:
            found.append('no node targets in Prometheus (job="node")')
        found += [f"node {node.name} is down" for node in self.nodes if not node.up]
        if "alerts" in self.errors:
            found.append(f"alerts {self.errors['alerts']}")
        critical = [alert for alert in self.alerts if alert.severity == CRITICAL]
        found += [f"critical alert {alert.name}: {alert.summary}" for alert in critical]
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(status_json(self), indent=indent)


def exit_code(report: Report) -> int:
    """0 when every node is up and no critical alert fires, 1 otherwise (Prometheus unreachable included)."""
    return 0 if report.healthy else 1


def _point(ts: float, value: float) -> list[float]:
    return [int(ts) if float(ts).is_integer() else ts, value]


def status_json(report: Report) -> dict[str, Any]:
    """The report in the shape the web UI reads (see status.md); extra top-level keys may be added, none removed."""
    return {
        "nodes": [{"name": n.name, "role": n.role, "up": n.up} for n in report.nodes],
        "models": [{"name": m.name, "loaded": m.loaded} for m in report.models],
        "leds": None if report.leds is None else {"state": report.leds.state, "detail": report.leds.detail},
        "alerts": [{"name": a.name, "severity": a.severity, "summary": a.summary} for a in report.alerts],
        "series": {name: [_point(ts, value) for ts, value in points] for name, points in report.series.items()},
        "services": [asdict(service) for service in report.services],
        "versions": [asdict(version) for version in report.versions],
        "targets": [asdict(target) for target in report.targets],
        "last_update": None if report.last_update is None else asdict(report.last_update),
        "bom": report.bom,
        "errors": dict(report.errors),
        "healthy": report.healthy,
        "problems": report.problems(),
        "generated_at": report.generated_at,
        "prometheus_url": report.prometheus_url,
    }


# --- parsing Prometheus answers ----------------------------------------------------------------------------------


def _labels(entry: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in entry.get("metric", {}).items()}


def _mapping(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object of an answer or a file (a target's ``labels``, a BOM's ``versions``); {} when it is not one."""
    value = entry.get(key)
    return value if isinstance(value, dict) else {}


def _value(entry: dict[str, Any]) -> float | None:
    point = parse_point(entry.get("value"))
    return None if point is None else point[1]


def parse_targets(targets: list[dict[str, Any]]) -> list[Target]:
    found = []
    for target in targets:
        labels = _mapping(target, "labels")
        found.append(
            Target(
                job=str(labels.get("job", "")),
                node=str(labels.get("node", "")),
                instance=str(labels.get("instance", "")),
                health=str(target.get("health", "unknown")),
                error=str(target.get("lastError") or ""),
            )
        )
    return sorted(found, key=lambda t: (t.job, t.node, t.instance))


def parse_nodes(up: list[dict[str, Any]], targets: list[dict[str, Any]] | None) -> list[Node]:
    """Nodes from ``up{job="node"}``, plus node targets not scraped yet (no ``up`` sample: not up)."""
    nodes: dict[str, Node] = {}
    for entry in up:
        labels = _labels(entry)
        name = labels.get("node") or labels.get("instance", "")
        nodes[name] = Node(name=name, role=labels.get("role", ""), up=_value(entry) == 1)
    for target in targets or []:
        labels = _mapping(target, "labels")
        if labels.get("job") != "node":
            continue
        name = str(labels.get("node") or labels.get("instance", ""))
        if name not in nodes:
            nodes[name] = Node(name=name, role=str(labels.get("role", "")), up=target.get("health") == "up")
    return sorted(nodes.values(), key=lambda n: (n.role != "claw", n.name))


def parse_services(claw_units: list[dict[str, Any]], node_units: list[dict[str, Any]]) -> list[Service]:
    """Units from the claw exporter's ``claw_unit_active`` and node_exporter's ``node_systemd_unit_state``.

    The claw exporter's view wins for a unit both report; node_exporter's carries the exact state name.
    """
    services: dict[tuple[str, str], Service] = {}
    for entry in node_units:
        labels = _labels(entry)
        node, unit, state = labels.get("node", ""), labels.get("name", ""), labels.get("state", "")
        if unit:
            services[(node, unit)] = Service(node=node, unit=unit, state=state, active=state == "active")
    for entry in claw_units:
        labels = _labels(entry)
        node, unit = labels.get("node", ""), labels.get("unit", "")
        if not unit:
            continue
        active = _value(entry) == 1
        previous = services.get((node, unit))
        state = previous.state if previous and previous.active == active else ("active" if active else "inactive")
        services[(node, unit)] = Service(node=node, unit=unit, state=state, active=active)
    return sorted(services.values(), key=lambda s: (s.node, s.unit))


def parse_versions(entries: list[dict[str, Any]]) -> list[Version]:
    found = set()
    for entry in entries:
        labels = _labels(entry)
        name = labels.get("__name__", "")
        version = labels.get("version", "")
        if not version:
            continue
        component = labels.get("engine", "engine") if name == "crush_engine_info" else name.removesuffix("_build_info")
        found.add(Version(component=component, node=labels.get("node", ""), version=version))
    return sorted(found, key=lambda v: (v.node, v.component))


def parse_alerts(alerts: list[dict[str, Any]]) -> list[Alert]:
    """The firing alerts (pending ones are left out), critical first."""
    found = []
    for alert in alerts:
        if alert.get("state") != "firing":
            continue
        labels = _mapping(alert, "labels")
        annotations = _mapping(alert, "annotations")
        found.append(
            Alert(
                name=str(labels.get("alertname", "")),
                severity=str(labels.get("severity", "")),
                summary=str(annotations.get("summary", "")),
                node=str(labels.get("node", "")),
                active_at=str(alert.get("activeAt", "")),
            )
        )
    return sorted(found, key=lambda a: (a.severity != CRITICAL, a.severity, a.name, a.node))


def parse_series(matrix: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The first series of a range query's matrix as (time, value) pairs; NaN and infinities are dropped."""
    if not matrix:
        return []
    values = matrix[0].get("values")
    points = (parse_point(pair) for pair in values) if isinstance(values, list) else ()
    return [point for point in points if point is not None]


def parse_leds(answer: dict[str, Any]) -> Leds:
    """The LED daemon's ``get`` answer: what the winning layer shows, and why."""
    winner = answer.get("winner")
    if not isinstance(winner, dict):
        return Leds(state="off", detail="no layers: the strip is dark")
    state = winner.get("state") or winner.get("pattern") or winner.get("level") or "on"
    detail = winner.get("detail") or f"{winner.get('level', '')} layer {winner.get('key', '')}".strip()
    return Leds(state=str(state), detail=str(detail))


def read_last_update(path: Path) -> LastUpdate | None:
    """The playbooks' ``{"time", "playbook", "version"}`` record; None when the file does not exist.

    Raises OSError or ValueError when the file is there but unreadable or not that record.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("time"), str):
        raise ValueError(f"{path}: expected a JSON object with a 'time' string")
    return LastUpdate(time=data["time"], playbook=str(data.get("playbook", "")), version=str(data.get("version", "")))


def read_bom(path: Path) -> dict[str, Any] | None:
    """The node's bill of materials (``/var/lib/claw/bom.json``); None when the file does not exist.

    Raises OSError or ValueError when the file is there but unreadable or not a JSON object with a ``node``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("node"), str):
        raise ValueError(f"{path}: expected a JSON object with a 'node' string")
    return data


def bom_versions(bom: dict[str, Any]) -> list[Version]:
    """The versions a bill of materials names: claw (the apps' release id), openclaw, nodejs, the engine, the OS."""
    node = bom["node"]
    versions = _mapping(bom, "versions")
    engine = _mapping(bom, "engine")
    system = _mapping(bom, "os")
    found = [
        ("claw", versions.get("claw_apps")),
        ("openclaw", versions.get("openclaw")),
        ("nodejs", versions.get("nodejs")),
        (str(engine.get("name") or "engine"), engine.get("version") if engine.get("name") else None),
        ("os", " ".join(str(system[k]) for k in ("distribution", "version", "architecture") if system.get(k))),
    ]
    return [Version(component=c, node=node, version=str(v)) for c, v in found if v]


def merge_versions(from_prometheus: list[Version], from_bom: list[Version]) -> list[Version]:
    """Prometheus's versions of every node; the local bill of materials' where it names the same node and component."""
    local = {(v.node, v.component) for v in from_bom}
    kept = [v for v in from_prometheus if (v.node, v.component) not in local]
    return sorted([*kept, *from_bom], key=lambda v: (v.node, v.component))


# --- collection --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Where the report comes from; None leaves a source out (its section stays empty, without an error)."""

    prometheus_url: str | None = None
    engine_url: str | None = None
    leds_socket: Path | None = DEFAULT_SOCKET
    last_update_file: Path | None = DEFAULT_LAST_UPDATE_FILE
    bom_file: Path | None = DEFAULT_BOM_FILE
    timeout: float = DEFAULT_TIMEOUT_S
    # Tests hand in httpx.MockTransport here.
    prometheus_transport: httpx.AsyncBaseTransport | None = None
    engine_transport: httpx.AsyncBaseTransport | None = None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"unavailable: {text}" if text else f"unavailable: {type(exc).__name__}"


async def _soft(section: str, errors: dict[str, str], work: Awaitable[T]) -> T | None:
    """Run one section's work; a failure costs that section only and is kept in ``errors``."""
    try:
        return await work
    except Exception as exc:  # a source that is down, or answers nonsense, must not cost the report
        if not isinstance(exc, (PrometheusError, OSError, ValueError)):
            log.debug("section %s failed", section, exc_info=True)
        errors[section] = _reason(exc)
        return None


async def _models_from_engine(url: str, timeout: float, transport: httpx.AsyncBaseTransport | None) -> list[Model]:
    async with EngineClient(url, timeout=timeout, transport=transport) as engine:
        await engine.engine()
        served, loaded = await asyncio.gather(engine.list_models(), engine.loaded_models())
    loaded_names = {model.name for model in loaded}
    names = [model.name for model in served] + sorted(loaded_names - {model.name for model in served})
    return [Model(name=name, loaded=name in loaded_names) for name in names]


async def _leds(socket_path: Path) -> Leds:
    return parse_leds(await LedClient(socket_path, timeout=LEDS_TIMEOUT_S).get())


async def _prometheus_sections(prom: PrometheusClient, report: Report, now: float) -> list[Model] | None:
    """Fill the Prometheus sections of ``report``; returns the loaded models the crush exporter saw (None: failed)."""
    errors = report.errors
    loaded: list[Model] | None = None

    async def nodes() -> None:
        up, targets = await asyncio.gather(prom.query(NODES_QUERY), _soft("targets", errors, prom.targets()))
        report.nodes = parse_nodes(up, targets)
        report.targets = parse_targets(targets or [])

    async def services() -> None:
        claw, node = await asyncio.gather(*(prom.query(expr) for expr in SERVICES_QUERIES.values()))
        report.services = parse_services(claw, node)

    async def versions() -> None:
        report.versions = parse_versions(await prom.query(VERSIONS_QUERY))

    async def alerts() -> None:
        report.alerts = parse_alerts(await prom.alerts())

    async def models() -> None:
        nonlocal loaded
        entries = await prom.query(LOADED_MODELS_QUERY)
        names = sorted({_labels(entry).get("model", "") for entry in entries} - {""})
        loaded = [Model(name=name, loaded=True) for name in names]

    async def series(name: str, expr: str) -> None:
        start = now - SERIES_RANGE_S
        report.series[name] = parse_series(await prom.query_range(expr, start, now, SERIES_STEP_S))

    for name in SERIES_QUERIES:
        report.series[name] = []
    await asyncio.gather(
        _soft("nodes", errors, nodes()),
        _soft("services", errors, services()),
        _soft("versions", errors, versions()),
        _soft("alerts", errors, alerts()),
        _soft("models", errors, models()),
        *(_soft(f"series.{name}", errors, series(name, expr)) for name, expr in SERIES_QUERIES.items()),
    )
    if all(section in errors for section in ("nodes", "targets", "alerts")):
        errors["prometheus"] = errors["nodes"]
    return loaded


async def collect_report(sources: Sources, clock: Callable[[], float] = time.time) -> Report:
    """Ask every configured source in parallel and assemble one :class:`Report`; never raises for a source.

    Models come from the engine when ``engine_url`` is given and it answers (served and loaded ones), else from
    the crush exporter's ``crush_model_loaded_info`` in Prometheus (loaded ones only).
    """
    now = clock()
    report = Report(generated_at=now, prometheus_url=sources.prometheus_url, engine_url=sources.engine_url)
    errors = report.errors
    engine_models = leds = last_update = prometheus_models = bom = None
    if sources.engine_url is not None:
        engine_work = _models_from_engine(sources.engine_url, ENGINE_TIMEOUT_S, sources.engine_transport)
        engine_models = _soft("engine", errors, engine_work)
    if sources.leds_socket is not None:
        leds = _soft("leds", errors, _leds(sources.leds_socket))
    if sources.last_update_file is not None:
        last_update = _soft("last_update", errors, _read_last_update(sources.last_update_file))
    if sources.bom_file is not None:
        bom = _soft("bom", errors, _read_bom(sources.bom_file))
    prom = None
    if sources.prometheus_url is not None:
        prom = PrometheusClient(sources.prometheus_url, sources.timeout, transport=sources.prometheus_transport)
        prometheus_models = _prometheus_sections(prom, report, now)
    try:
        from_engine, report.leds, report.last_update, from_prometheus, report.bom = await asyncio.gather(
            _maybe(engine_models), _maybe(leds), _maybe(last_update), _maybe(prometheus_models), _maybe(bom)
        )
    finally:
        if prom is not None:
            await prom.aclose()
    if report.bom is not None:
        report.versions = merge_versions(report.versions, bom_versions(report.bom))
    if from_engine is not None:
        report.models = from_engine
        errors.pop("models", None)  # the crush exporter's view was only the fallback
    else:
        report.models = from_prometheus or []
    return report


async def _maybe(work: Awaitable[T] | None) -> T | None:
    return None if work is None else await work


async def _read_last_update(path: Path) -> LastUpdate | None:
    return read_last_update(path)


async def _read_bom(path: Path) -> dict[str, Any] | None:
    return read_bom(path)


def collect_report_sync(sources: Sources) -> Report:
    """:func:`collect_report` for callers without an event loop (the CLI)."""
    return asyncio.run(collect_report(sources))
