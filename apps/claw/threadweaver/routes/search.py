"""``GET /search?q=...&limit=20``: full-text search over every thread's messages (at most 100 hits)."""

from __future__ import annotations

from fastapi import APIRouter

from claw.threadweaver.routes.deps import LOGGED_IN, Store

router = APIRouter(dependencies=LOGGED_IN)


@router.get("/search")
def search(q: str, store: Store, limit: int = 20) -> list[dict[str, str]]:
    # A plain def: a search over many messages runs in a worker thread while the event loop serves the rest.
    return [dict(vars(hit)) for hit in store.search(q, min(max(limit, 1), 100))]
