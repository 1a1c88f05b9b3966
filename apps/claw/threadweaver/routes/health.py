"""``GET /healthz``: up, and how many threads the store holds (no session needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claw.threadweaver.routes.deps import Store

router = APIRouter()


@router.get("/healthz")
def healthz(store: Store) -> dict[str, Any]:
    # A plain def, like every route that queries the store: FastAPI runs it in a worker thread.
    return {"status": "ok", "threads": len(store.threads())}
