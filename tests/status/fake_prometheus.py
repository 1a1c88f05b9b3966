"""A fake Prometheus speaking the real HTTP API's JSON (shapes from Prometheus 2.42's /api/v1 answers).

It knows the exact PromQL ``claw.status`` asks and answers every other query with HTTP 400 ``bad_data``, as
Prometheus answers a query it cannot parse, so a changed query shows up as a failing test rather than as an
empty section. :meth:`FakePrometheus.handle` is an ``httpx.MockTransport`` handler; :func:`serve` puts any such
handler on a real socket for the CLI tests.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from claw.status.report import (
    LOADED_MODELS_QUERY,
    NODES_QUERY,
    SERIES_QUERIES,
    SERVICES_QUERIES,
    VERSIONS_QUERY,
)

NOW = 1763730000.0  # 2025-11-21T13:00:00Z
NODE_ADDRESSES = {"claw": "10.0.0.10", "crush": "10.0.0.11"}


def alert(name: str, severity: str, summary: str, state: str = "firing", **labels: str) -> dict[str, Any]:
    """One entry of /api/v1/alerts as Prometheus writes it."""
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": summary, "description": f"{summary} (description)"},
        "state": state,
        "activeAt": "2025-11-21T12:55:00.123456789Z",
        "value": "0e+00",
    }


def hour_of(values: list[float], end: float = NOW) -> list[list[Any]]:
    """Range-query values: one point a minute ending at ``end``, each value as the API's string."""
    start = end - 60 * (len(values) - 1)
    return [[start + 60 * i, repr(float(v)) if v == v else "NaN"] for i, v in enumerate(values)]


@dataclass
class FakePrometheus:
    # node -> (role, up)
    nodes: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {"claw": ("claw", True), "crush": ("crush", True)}
    )
    # unit -> active, as the claw exporter reports them (node claw)
    claw_units: dict[str, bool] = field(
        default_factory=lambda: {"openclaw.service": True, "claw-leds.service": True, "prometheus.service": True}
    )
    # (node, unit, state) from node_exporter's systemd collector
    node_units: list[tuple[str, str, str]] = field(
        default_factory=lambda: [("crush", "ollama.service", "active"), ("claw", "openclaw.service", "active")]
    )
    engine_version: str = "0.12.6"
    claw_version: str = "0.4.0"
    loaded_models: list[str] = field(default_factory=lambda: ["qwen3:4b"])
    alerts: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, list[list[Any]]] = field(
        default_factory=lambda: {
            "power_watts": hour_of([14.0, 15.5, 21.25]),
            "gpu_load": hour_of([0.0, 0.5, 0.75]),
            "tokens_per_s": [],
            "temperature_c": hour_of([51.0, 58.5, 62.0]),
        }
    )
    failing: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # path -> answer instead
    requests: list[httpx.Request] = field(default_factory=list)

    # --- the API ---------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path in self.failing:
            status, body = self.failing[path]
            return httpx.Response(status, json=body)
        params = request.url.params
        routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/api/v1/query": lambda: self._query(params.get("query", "")),
            "/api/v1/query_range": lambda: self._query_range(params.get("query", ""), params),
            "/api/v1/targets": self._targets,
            "/api/v1/alerts": lambda: (200, success({"alerts": self.alerts})),
        }
        if path not in routes:
            return httpx.Response(404, text="404 page not found\n")
        status, body = routes[path]()
        return httpx.Response(status, json=body)

    def _query(self, expr: str) -> tuple[int, dict[str, Any]]:
        vectors = {
            NODES_QUERY: self._up,
            SERVICES_QUERIES["claw"]: self._claw_units,
            SERVICES_QUERIES["node"]: self._node_units,
            VERSIONS_QUERY: self._versions,
            LOADED_MODELS_QUERY: self._models,
        }
        if expr not in vectors:
            return bad_data(expr)
        return 200, success({"resultType": "vector", "result": vectors[expr]()})

    def _query_range(self, expr: str, params: httpx.QueryParams) -> tuple[int, dict[str, Any]]:
        names = {query: name for name, query in SERIES_QUERIES.items()}
        if expr not in names:
            return bad_data(expr)
        for key in ("start", "end", "step"):
            float(params[key])  # Prometheus rejects a missing or unparsable one
        values = self.series.get(names[expr], [])
        result = [{"metric": {}, "values": values}] if values else []
        return 200, success({"resultType": "matrix", "result": result})

    def _targets(self) -> tuple[int, dict[str, Any]]:
        targets = []
        for node, (role, up) in self.nodes.items():
            instance = f"{NODE_ADDRESSES.get(node, node)}:9100"
            error = "" if up else f'Get "http://{instance}/metrics": dial tcp {instance}: connect: no route to host'
            targets.append(target("node", instance, error, node=node, role=role))
        targets.append(target("claw", "10.0.0.10:9810", "", node="claw"))
        targets.append(target("crush", "10.0.0.11:9811", "", node="crush"))
        return 200, success({"activeTargets": targets, "droppedTargets": []})

    # --- vectors ---------------------------------------------------------------------------------------------

    def _up(self) -> list[dict[str, Any]]:
        return [
            sample(
                "up",
                1.0 if up else 0.0,
                instance=f"{NODE_ADDRESSES.get(node, node)}:9100",
                job="node",
                node=node,
                role=role,
            )
            for node, (role, up) in self.nodes.items()
        ]

    def _claw_units(self) -> list[dict[str, Any]]:
        return [
            sample(
                "claw_unit_active", 1.0 if active else 0.0, instance="10.0.0.10:9810", job="claw", node="claw", unit=u
            )
            for u, active in self.claw_units.items()
        ]

    def _node_units(self) -> list[dict[str, Any]]:
        return [
            sample("node_systemd_unit_state", 1.0, instance=f"{node}:9100", job="node", name=unit, node=node, state=st)
            for node, unit, st in self.node_units
        ]

    def _versions(self) -> list[dict[str, Any]]:
        return [
            sample(
                "claw_build_info", 1.0, instance="10.0.0.10:9810", job="claw", node="claw", version=self.claw_version
            ),
            sample(
                "crush_engine_info",
                1.0,
                engine="ollama",
                instance="10.0.0.11:9811",
                job="crush",
                node="crush",
                version=self.engine_version,
            ),
            sample(
                "prometheus_build_info",
                1.0,
                branch="debian/sid",
                instance="127.0.0.1:9090",
                job="prometheus",
                version="2.42.0+ds",
            ),
            sample(
                "node_exporter_build_info", 1.0, instance="10.0.0.11:9100", job="node", node="crush", version="1.5.0"
            ),
        ]

    def _models(self) -> list[dict[str, Any]]:
        return [
            sample("crush_model_loaded_info", 1.0, instance="10.0.0.11:9811", job="crush", model=m, node="crush")
            for m in self.loaded_models
        ]


def success(data: Any) -> dict[str, Any]:
    return {"status": "success", "data": data}


def bad_data(expr: str) -> tuple[int, dict[str, Any]]:
    return 400, {"status": "error", "errorType": "bad_data", "error": f"1:1: parse error: unexpected query {expr!r}"}


def sample(metric: str, value: float, /, **labels: str) -> dict[str, Any]:
    return {"metric": {"__name__": metric, **labels}, "value": [NOW, f"{value:g}"]}


def target(job: str, instance: str, error: str, **labels: str) -> dict[str, Any]:
    return {
        "discoveredLabels": {"__address__": instance, "__metrics_path__": "/metrics", "__scheme__": "http", "job": job},
        "labels": {"instance": instance, "job": job, **labels},
        "scrapePool": job,
        "scrapeUrl": f"http://{instance}/metrics",
        "globalUrl": f"http://{instance}/metrics",
        "lastError": error,
        "lastScrape": "2025-11-21T12:59:58.5Z",
        "lastScrapeDuration": 0.004,
        "health": "down" if error else "up",
        "scrapeInterval": "15s",
        "scrapeTimeout": "10s",
    }


@contextlib.contextmanager
def serve(handler: Callable[[httpx.Request], httpx.Response]) -> Iterator[str]:
    """An httpx handler on a real socket (127.0.0.1, a free port); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            response = handler(httpx.Request("GET", f"http://{self.headers.get('Host', 'fake')}{self.path}"))
            body = response.content
            self.send_response(response.status_code)
            self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
