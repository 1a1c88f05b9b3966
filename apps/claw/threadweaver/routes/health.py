"""``GET /healthz``: the console is up (no session needed, so it tells nothing else: no counts, no versions)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    # Answered by the event loop itself: a loop that is stuck answers nothing, which is what a probe must see.
    return {"status": "ok"}
