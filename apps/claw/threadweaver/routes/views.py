"""The JSON and SSE shapes of messages and turns, shared by the thread, message and search routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from claw.threadweaver.console import Turn
from claw.threadweaver.store import StoredMessage


def message(stored: StoredMessage) -> dict[str, Any]:
    # A shallow copy: the fields are JSON values already, and dataclasses.asdict (which deep-copies every one of
    # them) cost about 50x as much, for every message a turn returns and every search hit.
    return dict(vars(stored))


def turn(done: Turn) -> dict[str, Any]:
    return {"messages": [message(m) for m in done.messages], "approval_required": done.approval_required}


def sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
