"""``/notifications``: services post short texts for the console (``POST``, a gateway client's key, as OpenClaw's
agents use ``/v1``), and the console lists them (``GET``, a session). See :mod:`..notifications`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from claw.threadweaver.blocking import in_thread
from claw.threadweaver.gateway import GatewayError
from claw.threadweaver.notifications import Notifications
from claw.threadweaver.routes.deps import GatewayDep, Session, Store

router = APIRouter(tags=["notifications"])
MAX_TEXT = 2000


class NotificationIn(BaseModel):
    """What a service posts: ``source`` and ``text`` (or, as the swarm supervisor sends, ``symptom`` and
    ``action``); every other field is kept as the notification's detail."""

    model_config = ConfigDict(extra="allow")

    source: str = Field(min_length=1, max_length=64)
    text: str | None = Field(None, max_length=MAX_TEXT)
    title: str = Field("", max_length=200)
    agent: str | None = Field(None, max_length=64, description="The agent the notification is for, if one")

    @model_validator(mode="after")
    def _has_text(self) -> NotificationIn:
        if not (self.text or "").strip():
            extra = self.model_extra or {}
            parts = [str(extra[key]) for key in ("worker", "symptom", "action") if extra.get(key)]
            if not parts:
                raise ValueError("give 'text' (what to show)")
            self.text = ": ".join(parts)[:MAX_TEXT]
        return self


async def notifications(request: Request, store: Store) -> Notifications:
    """The app's notifications table, made (and its schema ensured) on first use."""
    found = getattr(request.app.state, "notifications", None)
    if found is None:
        found = await in_thread(Notifications, store.db)
        request.app.state.notifications = found
    return found


NotificationsDep = Annotated[Notifications, Depends(notifications)]


@router.post("/notifications", status_code=201)
async def post(body: NotificationIn, request: Request, gateway: GatewayDep, table: NotificationsDep) -> dict[str, Any]:
    try:
        client = gateway.authenticate(request.headers.get("authorization"))
    except GatewayError as err:
        raise HTTPException(401, f"a gateway client's key is required: {err}", {"WWW-Authenticate": "Bearer"}) from None
    detail = dict(body.model_extra or {})
    added = await in_thread(
        table.add, client.name, body.source, body.text or "", title=body.title, agent=body.agent, detail=detail
    )
    return added.as_dict()


@router.get("/notifications")
async def listing(
    _: Session, table: NotificationsDep, limit: Annotated[int, Query(ge=1, le=200)] = 50, after: int = 0
) -> dict[str, Any]:
    found = await in_thread(table.recent, limit=limit, after=after)
    return {"notifications": [notification.as_dict() for notification in found]}
