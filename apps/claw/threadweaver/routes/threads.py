"""Threads: create, list, change (provider, model, caps, tools), and read one as a tree, a path or two branches.

Plain ``def`` routes: FastAPI runs them in a worker thread, so their store queries never block the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from claw.threadweaver.routes import views
from claw.threadweaver.routes.deps import LOGGED_IN, ConsoleDep, RouterDep, Store
from claw.threadweaver.store import NotFound, Thread

router = APIRouter(prefix="/threads", dependencies=LOGGED_IN)


class NewThread(BaseModel):
    provider: str
    model: str
    title: str = ""
    fallback_provider: str | None = None
    fallback_model: str | None = None
    system_prompt: str = ""
    max_output_tokens: int | None = Field(None, gt=0)
    cap_usd: float | None = Field(None, ge=0)
    tools: bool | None = Field(None, description="Offer the MCP tools; default: on when any server is configured")


class ThreadChange(BaseModel):
    provider: str | None = None
    model: str | None = None
    fallback_provider: str | None = None
    fallback_model: str | None = None
    max_output_tokens: int | None = Field(None, gt=0)
    cap_usd: float | None = Field(None, ge=0)
    tools: bool | None = None


@router.post("", status_code=201)
def create_thread(body: NewThread, store: Store, providers: RouterDep, console: ConsoleDep) -> Thread:
    providers.validate(body.provider)
    providers.validate(body.fallback_provider)
    fields = body.model_dump()
    if fields["tools"] is None:
        fields["tools"] = console.tools_default
    return store.create_thread(**fields)


@router.get("")
def list_threads(store: Store) -> list[Thread]:
    return store.threads()


@router.patch("/{thread_id}")
def change_thread(thread_id: str, body: ThreadChange, store: Store, providers: RouterDep) -> Thread:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("tools", False) is None:
        del changes["tools"]  # the flag is on or off; null changes nothing
    providers.validate(changes.get("provider"))
    providers.validate(changes.get("fallback_provider"))
    return store.update_thread(thread_id, **changes)


@router.get("/{thread_id}")
def thread_tree(thread_id: str, store: Store) -> dict[str, Any]:
    thread = store.thread(thread_id)
    return {
        "thread": thread,
        "messages": [views.message(m) for m in store.messages(thread_id)],
        "leaves": [leaf.id for leaf in store.leaves(thread_id)],
    }


@router.get("/{thread_id}/path/{message_id}")
def path(thread_id: str, message_id: str, store: Store) -> list[dict[str, Any]]:
    history = store.path(message_id)
    if history[-1].thread_id != thread_id:
        raise NotFound(f"no message {message_id} in thread {thread_id}")
    return [views.message(m) for m in history]


@router.get("/{thread_id}/compare")
def compare(thread_id: str, a: str, b: str, store: Store) -> dict[str, Any]:
    store.thread(thread_id)
    diff = store.compare(a, b)
    return {
        "common": [m.id for m in diff.common],
        "only_a": [views.message(m) for m in diff.only_a],
        "only_b": [views.message(m) for m in diff.only_b],
    }
