"""``GET /providers``: the configured providers and their models, for the UI's picker."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claw.threadweaver.routes.deps import LOGGED_IN, RouterDep

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/providers")
async def list_providers(providers: RouterDep) -> list[dict[str, Any]]:
    return providers.catalog()
