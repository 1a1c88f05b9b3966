"""A fake model server replaying scripted answers in the real Ollama and OpenAI wire formats.

Ollama: /api/chat as NDJSON (stream) or one JSON object, tool_calls with object arguments, done-chunk timings;
/api/generate (preload, keep_alive 0 evicts), /api/ps, /api/tags, /api/version.
OpenAI: /v1/chat/completions as SSE (stream, tool call arguments as JSON-string fragments) or JSON; /v1/models.
The script step is the number of assistant messages already in the request, so the fake keeps no state.
Models: any scripted name; "slow" sleeps, "broken" answers 500, "missing" is unknown (404).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = dict[str, Any]  # {"text": "..."} or {"tools": [(name, arguments), ...]}


def say(text: str | Callable[[], str]) -> Step:
    """A reply; a callable text is called when the fake answers."""
    return {"text": text}


def call(name: str, **arguments: Any) -> Step:
    return {"tools": [(name, arguments)]}


class FakeEngine:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Step]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.loaded: set[str] = set()
        self.router: Any = None  # model "router": script chosen by the user's prompt (several tasks, one model)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, kind: str, pieces: list[bytes]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def do_GET(self) -> None:
                fake.requests.append(("GET " + self.path, {}))
                if self.path == "/api/version":
                    return self._send(200, b'{"version": "0.0.0-fake"}')
                if self.path == "/api/tags":
                    models = [{"name": m, "model": m, "digest": f"sha256:{m}"} for m in fake.scripts]
                    return self._send(200, json.dumps({"models": models}).encode())
                if self.path == "/api/ps":
                    models = [{"name": m, "model": m, "size": 1 << 28, "size_vram": 0} for m in sorted(fake.loaded)]
                    return self._send(200, json.dumps({"models": models}).encode())
                if self.path == "/v1/models":
                    data = [{"id": m, "owned_by": "fake"} for m in fake.scripts]
                    return self._send(200, json.dumps({"data": data}).encode())
                return self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST " + self.path, body))
                model = body.get("model", "")
                if model == "broken" and self.path != "/api/generate":
                    return self._send(500, b'{"error": "engine fell over"}')
                if model == "missing" or (model not in fake.scripts and model not in ("slow", "router", "broken")):
                    return self._send(404, json.dumps({"error": f"model '{model}' not found"}).encode())
                if self.path == "/api/generate":
                    if body.get("keep_alive") == 0:
                        fake.loaded.discard(model)
                    else:
                        fake.loaded.add(model)
                    return self._send(
                        200,
                        json.dumps(
                            {"model": model, "response": "", "done": True, "load_duration": 120_000_000}
                        ).encode(),
                    )
                if model == "slow":
                    time.sleep(3)
                step = fake.step(model, body.get("messages", []))
                if self.path == "/api/chat":
                    return self._ollama(model, step, body.get("stream", True))
                if self.path == "/v1/chat/completions":
                    return self._openai(model, step, body.get("stream", False))
                return self._send(404, b'{"error": "not found"}')

            def _ollama(self, model: str, step: Step, stream: bool) -> None:
                calls = [{"function": {"name": n, "arguments": a}} for n, a in step.get("tools", [])]
                done = {"model": model, "done": True, "done_reason": "stop", "total_duration": 9_000_000,
                        "load_duration": 1_000_000, "prompt_eval_count": 20, "prompt_eval_duration": 2_000_000,
                        "eval_count": 8, "eval_duration": 4_000_000}  # fmt: skip
                text = step.get("text", "")
                if not stream:
                    message = {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
                    return self._send(200, json.dumps({**done, "message": message}).encode())
                chunks = [{"model": model, "message": {"role": "assistant", "content": piece}, "done": False}
                          for piece in _pieces(text)]  # fmt: skip
                if calls:
                    chunks.append({"model": model, "message": {"role": "assistant", "content": "", "tool_calls": calls},
                                   "done": False})  # fmt: skip
                chunks.append({**done, "message": {"role": "assistant", "content": ""}})
                self._stream("application/x-ndjson", [json.dumps(c).encode() + b"\n" for c in chunks])

            def _openai(self, model: str, step: Step, stream: bool) -> None:
                calls = [(f"call_{i}", n, json.dumps(a)) for i, (n, a) in enumerate(step.get("tools", []))]
                text = step.get("text", "")
                usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
                if not stream:
                    message: dict[str, Any] = {"role": "assistant", "content": text or None}
                    if calls:
                        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                                 for i, n, a in calls]  # fmt: skip
                    answer = {"id": "x", "object": "chat.completion", "model": model, "usage": usage,
                              "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
                    return self._send(200, json.dumps(answer).encode())
                base = {"id": "x", "object": "chat.completion.chunk", "model": model}
                events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
                events += [{**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in _pieces(text)]
                for index, (ident, name, arguments) in enumerate(calls):
                    half = len(arguments) // 2
                    events.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                        {"index": index, "id": ident, "type": "function",
                         "function": {"name": name, "arguments": arguments[:half]}}]}}]})  # fmt: skip
                    events.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                        {"index": index, "function": {"arguments": arguments[half:]}}]}}]})  # fmt: skip
                events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                events.append({**base, "choices": [], "usage": usage})
                pieces = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
                self._stream("text/event-stream", pieces)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def step(self, model: str, messages: list[dict[str, Any]]) -> Step:
        prompt = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        script = (self.router(prompt) if model == "router" else self.scripts.get(model)) or [say("")]
        index = sum(1 for m in messages if m.get("role") == "assistant")
        step = script[min(index, len(script) - 1)]
        if callable(step.get("text")):
            step = {**step, "text": step["text"]()}
        site = re.search(r"http://127\.0\.0\.1:\d+", prompt)
        return json.loads(json.dumps(step).replace("{site}", site.group(0) if site else ""))

    def __enter__(self) -> FakeEngine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i == 0] if text else []
