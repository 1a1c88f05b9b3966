"""``GET /status``: the cluster at a glance, when the status panel is configured (404 otherwise);
``GET /metrics``: ThreadWeaver's Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from claw.threadweaver.routes.deps import LOGGED_IN, MetricsDep, Status

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/status")
async def appliance_status(status: Status) -> dict[str, Any]:
    """The cluster at a glance (nodes, models, LEDs, firing alerts, the last hour's key series)."""
    if status is None:
        raise HTTPException(404, "the status panel is not configured (config key: status)")
    return await status.report()


@router.get("/metrics")
async def metrics(registry: MetricsDep) -> Response:
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
