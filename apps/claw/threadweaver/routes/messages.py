"""Messages: post one and get the turn (JSON) or its events (SSE), approve or deny a reply's tool calls,
regenerate a reply (a new sibling under the same parent; the old one stays), and continue a reply (the rest of it
appended to the same message).

The console (:mod:`..console`) runs the turn; its store queries and hooks run in worker threads, so these
``async`` routes never block the event loop while a turn streams.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictBool

from claw.threadweaver.console import NotRegenerable
from claw.threadweaver.routes import views
from claw.threadweaver.routes.deps import LOGGED_IN, ConsoleDep

router = APIRouter(prefix="/threads/{thread_id}/messages", dependencies=LOGGED_IN)


class NewMessage(BaseModel):
    content: str = Field(min_length=1)
    parent_id: str | None = Field(None, description="Reply under this message (a branch if it has children)")
    root: bool = Field(False, description="With no parent_id: a new first message, not a reply to the newest leaf")


class Approval(BaseModel):
    decisions: dict[str, StrictBool] = Field(description="call id -> true (run it) or false (deny it)")


@router.post("")
async def post_message(thread_id: str, body: NewMessage, console: ConsoleDep) -> dict[str, Any]:
    turn = await console.post(thread_id, body.content, body.parent_id, root=body.root)
    assert turn.user is not None
    return {"user": views.message(turn.user), "reply": views.message(turn.reply), **views.turn(turn)}


@router.post("/stream")
async def stream_message(thread_id: str, body: NewMessage, console: ConsoleDep) -> StreamingResponse:
    return views.sse(await console.stream(thread_id, body.content, body.parent_id, root=body.root))


@router.post("/{message_id}/approval")
async def approve(thread_id: str, message_id: str, body: Approval, console: ConsoleDep) -> dict[str, Any]:
    return views.turn(await console.approve(thread_id, message_id, body.decisions))


@router.post("/{message_id}/approval/stream")
async def approve_stream(thread_id: str, message_id: str, body: Approval, console: ConsoleDep) -> StreamingResponse:
    return views.sse(await console.approve_stream(thread_id, message_id, body.decisions))


@router.post("/{message_id}/regenerate")
async def regenerate(thread_id: str, message_id: str, console: ConsoleDep) -> dict[str, Any]:
    """Answer the reply's parent again with the thread's provider and model: 404 unknown, 422 not a reply."""
    try:
        turn = await console.regenerate(thread_id, message_id)
    except NotRegenerable as err:
        raise HTTPException(422, str(err)) from err
    return {"reply": views.message(turn.reply), **views.turn(turn)}


@router.post("/{message_id}/regenerate/stream")
async def regenerate_stream(thread_id: str, message_id: str, console: ConsoleDep) -> StreamingResponse:
    try:
        return views.sse(await console.regenerate_stream(thread_id, message_id))
    except NotRegenerable as err:
        raise HTTPException(422, str(err)) from err


@router.post("/{message_id}/continue")
async def continue_reply(thread_id: str, message_id: str, console: ConsoleDep) -> dict[str, Any]:
    """Ask the reply's provider and model for the rest of it, appended to the same message: 404 unknown, 422
    ``not_continuable``, 409 ``reply_answered`` or ``reply_busy``, 402 a cap (errors: NotContinuable's handler)."""
    turn = await console.continue_reply(thread_id, message_id)
    return {"reply": views.message(turn.reply), **views.turn(turn)}


@router.post("/{message_id}/continue/stream")
async def continue_stream(thread_id: str, message_id: str, console: ConsoleDep) -> StreamingResponse:
    return views.sse(await console.continue_stream(thread_id, message_id))
