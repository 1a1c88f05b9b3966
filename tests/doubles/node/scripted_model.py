#!/usr/bin/python3
"""Test double of a cloud model: an OpenAI chat-completions server whose replies follow a script.

A model that reliably asks for a given tool cannot run here (the demo's Gemma 3 270M is a base model), so this
double stands in for one, speaking the real protocol (JSON or server-sent events, tool calls, usage):
a user message `RUNEXEC <command>` makes it request the `exec` tool with that command, `RUNTOOL <tool> <JSON
arguments>` a call of that tool, and a SMEEP task's own prompt (TASKS: the benchmark's words, unchanged) the call
that task needs; once a tool result is in the conversation it answers with that result; anything else gets a plain
reply. A tool is named as the request's tool list names it: `day_of_week` is whichever offered tool is called so or
ends in `__day_of_week` (OpenClaw's `<server>__<tool>` for MCP tools). `GET /v1/requests` tells what reached
it, so a test can check what a gateway let through: how many chat requests, and each one's messages by role and
max_tokens.

    scripted_model.py PORT
"""

import json
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "scripted"
RECEIVED: list[dict] = []
# SMEEP tasks (benchmarks/smeep/tasks.py) this double can do: a phrase of the prompt -> the MCP server, the tool
# and its arguments.
TASKS = {
    "What day of the week is 2031-02-14?": ("time", "day_of_week", {"date": "2031-02-14"}),
}


def offered(body: dict, name: str) -> str:
    """The offered tool called `name`, or else the first whose name ends in `__name` (or `_name`); else `name`."""
    names = [(t.get("function") or {}).get("name") or "" for t in body.get("tools") or []]
    for suffix in ("", "__", "_"):
        found = [n for n in names if n == name or (suffix and n.endswith(suffix + name))]
        if found:
            return found[0]
    return name


def tool_call(name: str, arguments: dict) -> dict:
    call = {"name": name, "arguments": json.dumps(arguments)}
    return {"tool_calls": [{"id": "call_" + uuid.uuid4().hex[:8], "type": "function", "function": call}]}


def mcp_call(body: dict, server: str, name: str, arguments: dict) -> dict:
    """A call of MCP tool `name`: directly where it is offered, else through OpenClaw's Tool Search (`tool_call`
    with the catalog name `<server>__<name>`), as OpenClaw offers its MCP tools when it defers them."""
    direct = offered(body, name)
    names = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
    if direct in names or "tool_call" not in names:
        return tool_call(direct, arguments)
    return tool_call("tool_call", {"id": f"{server}__{name}", "args": arguments})


def unwrapped(content: object) -> str:
    """A tool result as text, without the notice OpenClaw wraps around a tool's output (it is the data between
    `<<<EXTERNAL_UNTRUSTED_CONTENT ...>>>` and its end marker): a model that echoed the markers would have its
    reply withheld as untrusted content."""
    text = content if isinstance(content, str) else json.dumps(content)
    wrapped = r"<<<EXTERNAL_UNTRUSTED_CONTENT[^>]*>>>\n(.*?)\n<<<END_EXTERNAL_UNTRUSTED_CONTENT"
    inner = re.search(wrapped, text, re.DOTALL)
    return inner.group(1) if inner else text


def reply(body: dict) -> dict:
    messages = body.get("messages") or []
    results = [m for m in messages if m.get("role") == "tool"]
    if results:
        return {"content": "tool result: " + unwrapped(results[-1].get("content"))[:2000]}
    users = " ".join(m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str))
    wanted = re.search(r"RUNEXEC (.+?)(?:$|\n)", users)
    if wanted:
        return tool_call("exec", {"command": wanted.group(1).strip()})
    named = re.search(r"RUNTOOL (\S+) (\{.*\})(?:$|\n)", users)
    if named:
        return tool_call(offered(body, named.group(1)), json.loads(named.group(2)))
    for phrase, (server, name, arguments) in TASKS.items():
        if phrase in users:
            return mcp_call(body, server, name, arguments)
    return {"content": "scripted reply"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/requests"):
            self._json(200, {"count": len(RECEIVED), "requests": RECEIVED})
        elif self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found"}})
            return
        RECEIVED.append(
            {
                "roles": [m.get("role") for m in body.get("messages") or []],
                "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
            }
        )
        answer = reply(body)
        finish = "tool_calls" if "tool_calls" in answer else "stop"
        head = {"id": "chatcmpl-" + uuid.uuid4().hex[:8], "created": int(time.time()), "model": MODEL}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": answer.get("content"),
                **({"tool_calls": answer["tool_calls"]} if "tool_calls" in answer else {}),
            }
            self._json(
                200,
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(payload: dict) -> None:
            self.wfile.write(
                b"data: " + json.dumps({**head, "object": "chat.completion.chunk", **payload}).encode() + b"\n\n"
            )

        event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        if "tool_calls" in answer:
            calls = [{"index": 0, **answer["tool_calls"][0]}]
            event({"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
        else:
            event({"choices": [{"index": 0, "delta": {"content": answer["content"]}, "finish_reason": None}]})
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            event({"choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
