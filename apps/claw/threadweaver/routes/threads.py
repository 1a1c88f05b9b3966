"""Threads: create, list, change (title, provider, model, caps, tools), delete, export (JSON or Markdown), and read
one as a tree, a path or two branches.

Plain ``def`` routes: FastAPI runs them in a worker thread, so their store queries never block the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from claw.threadweaver import export
from claw.threadweaver.routes import views
from claw.threadweaver.routes.deps import LOGGED_IN, ConsoleDep, RouterDep, Store
from claw.threadweaver.store import NotFound, Thread

router = APIRouter(prefix="/threads", dependencies=LOGGED_IN)


MAX_OUTPUT_TOKENS = 1_000_000  # more than any model writes; the store keeps 64-bit integers


class NewThread(BaseModel):
    provider: str
    model: str
    title: str = ""
    fallback_provider: str | None = None
    fallback_model: str | None = None
    system_prompt: str = ""
    max_output_tokens: int | None = Field(None, gt=0, le=MAX_OUTPUT_TOKENS)
    cap_usd: float | None = Field(None, ge=0)
    tools: bool | None = Field(None, description="Offer the MCP tools; default: on when any server is configured")


TITLE_MAX = 200


class ThreadChange(BaseModel):
    title: str | None = Field(None, description=f"Rename: 1 to {TITLE_MAX} characters, one line")
    provider: str | None = None
    model: str | None = None
    fallback_provider: str | None = None
    fallback_model: str | None = None
    max_output_tokens: int | None = Field(None, gt=0, le=MAX_OUTPUT_TOKENS)
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
    if "title" in changes:
        changes["title"] = _title(changes["title"])
    if changes.get("tools", False) is None:
        del changes["tools"]  # the flag is on or off; null changes nothing
    for required in ("provider", "model"):
        if required in changes and changes[required] is None:
            raise HTTPException(422, f"{required}: a thread's {required} cannot be null")
    providers.validate(changes.get("provider"))
    providers.validate(changes.get("fallback_provider"))
    return store.update_thread(thread_id, **changes)


def _title(title: str | None) -> str:
    """A new title, stripped; 422 (in the API's error shape) when empty, too long or not one line."""
    if title is None:
        raise HTTPException(422, "title: a thread's title cannot be null")
    title = title.strip()
    if not title or len(title) > TITLE_MAX or any(not char.isprintable() for char in title):
        raise HTTPException(422, f"title: 1 to {TITLE_MAX} printable characters on one line, not {title[:40]!r}")
    return title


@router.delete("/{thread_id}")
def delete_thread(thread_id: str, store: Store) -> dict[str, Any]:
    """Gone from the store, the search index and (when no reader holds it) the WAL: see ThreadStore.delete_thread."""
    deletion = store.delete_thread(thread_id)
    return {"deleted": deletion.thread_id, "messages": deletion.messages, "wal_cleared": deletion.wal_cleared}


@router.get("/{thread_id}/export")
def export_thread(thread_id: str, store: Store, format: str = "json", leaf: str | None = None) -> Response:
    """``format=json`` (default): the settings and the whole tree, or with ``leaf`` its branch only;
    ``format=markdown``: one branch, to ``leaf`` (any message of the thread) or else the newest leaf; a download."""
    if format not in ("json", "markdown"):
        raise HTTPException(422, f"format: json or markdown, not {format[:40]!r}")
    thread = store.thread(thread_id)
    leaves = [message.id for message in store.leaves(thread_id)]
    if leaf is not None and store.message(leaf).thread_id != thread_id:  # any message: the branch up to it
        raise NotFound(f"no message {leaf} in thread {thread_id}")
    if format == "json":
        messages = store.path(leaf) if leaf else store.messages(thread_id)
        body, media, extension = export.as_json(thread, messages, leaves, leaf), "application/json", "json"
    else:
        messages = store.messages(thread_id)
        tip = leaf or next((m.id for m in reversed(messages) if m.role != "note"), None)  # the newest, as the UI
        path = store.path(tip) if tip else []
        body, media, extension = export.as_markdown(thread, messages, path), "text/markdown; charset=utf-8", "md"
    disposition = f'attachment; filename="{export.filename(thread, extension)}"'
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


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
