"""A thread as a file: JSON (lossless: the settings and the whole tree, or one branch) or Markdown (one branch).

JSON keeps every message with its ``parent_id``, so the tree (every branch, notes and tool results included) can be
rebuilt from it; Markdown is for reading, and a conversation is a line, so it is one branch: the path from the root
to a leaf (by default the newest), with a line naming the other branches' leaves.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from claw.threadweaver.store import StoredMessage, Thread

FORMAT = "threadweaver.thread/1"
_HEADINGS = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool result", "note": "Note"}


def as_json(thread: Thread, messages: list[StoredMessage], leaves: list[str], leaf: str | None) -> str:
    document: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": time.time(),
        "thread": vars(thread),
        "scope": "branch" if leaf else "tree",
        "leaf": leaf,
        "leaves": leaves,
        "messages": [vars(m) for m in messages],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def as_markdown(thread: Thread, messages: list[StoredMessage], path: list[StoredMessage]) -> str:
    """``path`` (root to tip) of the thread's ``messages``, each followed by its notes (errors stored under it)."""
    title = thread.title or f"Thread {thread.id}"
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(thread.created_at))
    lines = [f"# {_one_line(title)}", "", f"- thread: `{thread.id}`, created {created}"]
    lines.append(f"- provider: {thread.provider} · {thread.model}")
    if thread.system_prompt:
        lines += ["- system prompt:", "", _quote(thread.system_prompt), ""]
    replies = [m for m in messages if m.role != "note"]
    parents = {m.parent_id for m in replies}
    on_path = {m.id for m in path}
    others = [m.id for m in replies if m.id not in parents and m.id not in on_path]
    if others:
        lines.append(
            f"- one of {len(others) + 1} branches; the others end at "
            + ", ".join(f"`{leaf}`" for leaf in others)
            + " (export one with `?leaf=`, or every branch as JSON)"
        )
    notes: dict[str | None, list[StoredMessage]] = {}
    for m in messages:
        if m.role == "note" and m.id not in on_path:
            notes.setdefault(m.parent_id, []).append(m)
    for message in path:
        for shown in (message, *notes.get(message.id, [])):
            lines += ["", f"## {_heading(shown)}", ""]
            lines.append(_quote(shown.content) if shown.role == "note" else shown.content)
            if shown.tool_calls:
                lines.append("")
            for call in shown.tool_calls:
                arguments = json.dumps(call.get("arguments") or {}, ensure_ascii=False)
                decision = f" ({call['approval']})" if call.get("approval") else ""
                lines.append(f"- tool call `{call['name']}`{decision}: `{arguments}`")
    return "\n".join(lines) + "\n"


def filename(thread: Thread, extension: str) -> str:
    """An ASCII file name for ``Content-Disposition``: the title's words, else the thread id."""
    slug = re.sub(r"[^a-z0-9]+", "-", thread.title.lower()).strip("-")[:60]
    return f"{slug or 'thread-' + thread.id}.{extension}"


def _heading(message: StoredMessage) -> str:
    heading = _HEADINGS.get(message.role, message.role)
    if message.role == "assistant" and message.provider:
        heading += f" ({message.provider} · {message.model})"
    if message.role == "tool" and message.tool_name:
        heading += f" ({message.tool_name})"
    if message.status != "complete":
        heading += f" [{message.status}]"
    return heading


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])
