"""A small async client for Prometheus' HTTP API: instant and range queries, targets and alerts.

Every method returns the ``data`` part of a ``{"status": "success", "data": ...}`` answer and raises only
:class:`PrometheusError`, whose message is a one-line reason fit for a report ("cannot connect to ...",
"no answer within 2 s", "HTTP 400 bad_data: ...").
"""

from __future__ import annotations

import math
from typing import Any

import httpx

DEFAULT_TIMEOUT_S = 2.0

# One sample as [unix time, value]; the API sends the value as a string ("1.5", "NaN", "+Inf").
Point = tuple[float, float]


class PrometheusError(Exception):
    """A request to Prometheus failed; the message says why in one line."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def parse_point(pair: Any) -> Point | None:
    """``[1700000000.123, "4.5"]`` into ``(1700000000.123, 4.5)``; None for NaN, infinities and junk."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    try:
        ts, value = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        return None
    return (ts, value) if math.isfinite(ts) and math.isfinite(value) else None


class PrometheusClient:
    """Prometheus at ``base_url`` (``http://127.0.0.1:9090``); use as an async context manager."""

    def __init__(
        self, base_url: str, timeout: float = DEFAULT_TIMEOUT_S, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # trust_env=False keeps LAN traffic off any proxy the shell has configured.
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport, trust_env=False)

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise PrometheusError(f"{self.base_url} gave no answer to {path} within {self.timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise PrometheusError(f"cannot connect to {self.base_url}: {exc or 'connection failed'}") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"GET {self.base_url}{path}: {_describe(exc)}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(f"GET {path}: HTTP {response.status_code}, not a Prometheus API answer")
        if response.is_error or body.get("status") != "success":
            kind = body.get("errorType") or "error"
            raise PrometheusError(f"GET {path}: HTTP {response.status_code} {kind}: {body.get('error', 'no reason')}")
        return body.get("data")

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: ``[{"metric": {labels}, "value": [ts, "v"]}, ...]``."""
        data = await self._get("/api/v1/query", {"query": expr})
        return _result(data, "vector", expr)

    async def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's matrix: ``[{"metric": {labels}, "values": [[ts, "v"], ...]}, ...]``."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = await self._get("/api/v1/query_range", params)
        return _result(data, "matrix", expr)

    async def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (``labels``, ``health``, ``lastError``, ``scrapeUrl``, ...)."""
        data = await self._get("/api/v1/targets", {"state": "active"})
        targets = data.get("activeTargets") if isinstance(data, dict) else None
        if not isinstance(targets, list):
            raise PrometheusError("GET /api/v1/targets: no activeTargets list in the answer")
        return [target for target in targets if isinstance(target, dict)]

    async def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``labels``, ``annotations``, ``state``, ``activeAt``, ``value``)."""
        data = await self._get("/api/v1/alerts")
        alerts = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(alerts, list):
            raise PrometheusError("GET /api/v1/alerts: no alerts list in the answer")
        return [alert for alert in alerts if isinstance(alert, dict)]


def _result(data: Any, kind: str, expr: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("resultType") != kind or not isinstance(data.get("result"), list):
        got = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise PrometheusError(f"query {expr!r}: expected a {kind}, got {got}")
    return [entry for entry in data["result"] if isinstance(entry, dict) and isinstance(entry.get("metric"), dict)]
