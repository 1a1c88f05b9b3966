"""In-process fake providers speaking each provider's real wire format (JSON bodies, SSE and NDJSON streams).

Each fake is an ``httpx.MockTransport`` handler: it records every request (path, headers, JSON body), counts them,
validates what the real service validates (Anthropic's alternating roles and required max_tokens, Mistral's
9-character tool call ids, Groq's rejected fields) and answers from a script of replies
(:class:`tests.doubles.engine.Reply`). The appliance's own engine is :class:`tests.doubles.engine.FakeOllama`, the
same double the engine client's tests serve on a socket, here in process. ``adapter(fake)`` builds the real
adapter of the fake's kind with its requests sent to the fake.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import httpx
from claw.threadweaver import providers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.doubles.engine import FakeOllama, Reply, next_reply
from tests.doubles.http import refused


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    out = []
    for event, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {event}\n" if event else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


class Fake:
    """Base: the request log, the reply script, and the transport."""

    kind = ""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.down = False

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def next_reply(self) -> Reply:
        return next_reply(self.replies) if self.replies else Reply("ok")

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            refused(request)
        body = json.loads(request.content or b"{}")
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        problem = self.validate(request, body)
        if problem is not None:
            return problem
        reply = self.next_reply()
        if reply.error is not None:
            return httpx.Response(reply.status, json=reply.error)
        if body.get("stream"):
            return self.stream(reply, body)
        return httpx.Response(200, json=self.json(reply, body))

    def validate(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        return None

    def json(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        raise NotImplementedError


class FakeOpenAI(Fake):
    kind = "openai"
    id_prefix = "call_"

    def call_id(self, n: int) -> str:
        return f"call_{n}abcDEF123xyz"

    def wire_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": call.get("id") or self.call_id(n),
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
            }
            for n, call in enumerate(reply.tool_calls)
        ]

    def usage(self, reply: Reply) -> dict[str, int]:
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }

    def json(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = self.wire_calls(reply)
        return {
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1760000000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": self.usage(reply),
        }

    def chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-abc123",
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        events: list[tuple[str | None, Any]] = [(None, self.chunk(body, {"role": "assistant", "content": ""}))]
        events += [(None, self.chunk(body, {"content": word})) for word in reply.streamed()]
        for n, call in enumerate(self.wire_calls(reply)):
            arguments = call["function"]["arguments"]
            head = {
                "index": n,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append((None, self.chunk(body, {"tool_calls": [head]})))
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                events.append(
                    (None, self.chunk(body, {"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
                )
        events.append((None, self.chunk(body, {}, "tool_calls" if reply.tool_calls else "stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**self.chunk(body, {}), "choices": [], "usage": self.usage(reply)}))
        events.append((None, "[DONE]"))
        return events

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(
            200, content=sse(self.stream_events(reply, body)), headers={"content-type": "text/event-stream"}
        )


class PacedOpenAI(FakeOpenAI):
    """The fake OpenAI with its streams sent event by event, ``delay`` seconds apart (a provider writing a long
    reply), in process or, through :meth:`app`, on a socket (:func:`tests.doubles.http.running`)."""

    def __init__(self, *replies: Reply, delay: float = 0.01) -> None:
        super().__init__(*replies)
        self.delay = delay

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        blocks = [sse([event]) for event in self.stream_events(reply, body)]

        async def paced() -> Any:
            for block in blocks:
                await anyio.sleep(self.delay)
                yield block

        return httpx.Response(200, content=paced(), headers={"content-type": "text/event-stream"})

    def app(self) -> Starlette:
        """OpenAI's ``/v1/chat/completions`` answered by this fake (the same log and script)."""

        async def completions(request: Request) -> Response:
            answer = self.handle(
                httpx.Request("POST", str(request.url), headers=request.headers.raw, content=await request.body())
            )
            media = answer.headers.get("content-type", "application/json")
            if media.startswith("text/event-stream"):
                return StreamingResponse(answer.aiter_raw(), answer.status_code, media_type=media)
            return Response(answer.content, answer.status_code, media_type=media)

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


class FakeMistral(FakeOpenAI):
    kind = "mistral"
    VALID = re.compile(r"^[A-Za-z0-9]{9}$")

    def call_id(self, n: int) -> str:
        return f"D{n}x8kQ2zP"[:9]

    def validate(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        ids = [m.get("tool_call_id") for m in body["messages"] if m["role"] == "tool"]
        ids += [c["id"] for m in body["messages"] for c in m.get("tool_calls") or []]
        for value in ids:
            if not value or not self.VALID.match(value):
                return httpx.Response(
                    400,
                    json={
                        "object": "error",
                        "message": f"Tool call id was {value} but must be a-z, A-Z, 0-9, with a length of 9.",
                        "type": "invalid_request_message_order",
                        "param": None,
                        "code": "3280",
                    },
                )
        return None

    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        # Mistral sends whole tool calls in one delta and the usage in the last chunk, unasked.
        events: list[tuple[str | None, Any]] = [(None, self.chunk(body, {"role": "assistant", "content": ""}))]
        events += [(None, self.chunk(body, {"content": word})) for word in reply.streamed()]
        if reply.tool_calls:
            events.append((None, self.chunk(body, {"tool_calls": self.wire_calls(reply)})))
        last = self.chunk(body, {"content": ""}, "tool_calls" if reply.tool_calls else "stop")
        events.append((None, {**last, "usage": self.usage(reply)}))
        events.append((None, "[DONE]"))
        return events


class FakeGroq(FakeOpenAI):
    kind = "groq"
    REJECTED = ("logprobs", "top_logprobs", "logit_bias", "stream_options")

    def validate(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        for name in self.REJECTED:
            if name in body:
                return httpx.Response(
                    400,
                    json={
                        "error": {
                            "message": f"'{name}' : property '{name}' is unsupported",
                            "type": "invalid_request_error",
                        }
                    },
                )
        if body.get("n", 1) != 1:
            return httpx.Response(
                400, json={"error": {"message": "'n' : number must be at most 1", "type": "invalid_request_error"}}
            )
        return None

    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        events = [e for e in super().stream_events(reply, body) if e[1] != "[DONE]"]
        last = events[-1][1]
        last["x_groq"] = {"id": "req_01", "usage": self.usage(reply)}
        return [*events, (None, "[DONE]")]


class FakeAnthropic(Fake):
    kind = "anthropic"

    def error(self, message: str, kind: str = "invalid_request_error", status: int = 400) -> httpx.Response:
        return httpx.Response(status, json={"type": "error", "error": {"type": kind, "message": message}})

    def validate(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        if not request.headers.get("x-api-key"):
            return self.error("x-api-key header is required", "authentication_error", 401)
        if request.headers.get("anthropic-version") != "2023-06-01":
            return self.error("anthropic-version header is required")
        if "max_tokens" not in body:
            return self.error("max_tokens: Field required")
        previous = None
        tool_ids: set[str] = set()
        for n, message in enumerate(body["messages"]):
            if message["role"] not in ("user", "assistant"):
                return self.error(f"messages.{n}.role: Input should be 'user' or 'assistant'")
            if message["role"] == previous:
                return self.error('messages: roles must alternate between "user" and "assistant"')
            previous = message["role"]
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "tool_use":
                    tool_ids.add(block["id"])
                if block["type"] == "tool_result" and block["tool_use_id"] not in tool_ids:
                    return self.error(f"messages.{n}: unexpected `tool_use_id` found in `tool_result` blocks")
        if body["messages"] and body["messages"][0]["role"] != "user":
            return self.error('messages: first message must use the "user" role')
        return None

    def blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        for n, call in enumerate(reply.tool_calls):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_01A{n}bc",
                    "name": call["name"],
                    "input": call["arguments"],
                }
            )
        return blocks

    def json(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": self.blocks(reply),
            "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        }

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        message = {**self.json(reply, body), "content": [], "stop_reason": None}
        message["usage"] = {"input_tokens": reply.input_tokens, "output_tokens": 1}
        events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": message})]
        index = 0
        if reply.text:
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            events.append(("ping", {"type": "ping"}))
            for word in reply.streamed():
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        for block in self.blocks(reply)[index:]:
            start = {**block, "input": {}}
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            )
            arguments = json.dumps(block["input"])
            for piece in (arguments[:5], arguments[5:]):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        stop = "tool_use" if reply.tool_calls else "end_turn"
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return httpx.Response(200, content=sse(events), headers={"content-type": "text/event-stream"})


FAKES = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "mistral": FakeMistral,
    "groq": FakeGroq,
    "crush": FakeOllama,
}


def adapter(fake, name: str | None = None, **options):
    """An adapter of the fake's kind whose requests go to the fake."""
    kind = fake.kind
    base = {"crush": "http://crush.test:11434", "anthropic": "https://api.anthropic.test"}.get(
        kind, f"https://{kind}.test/v1"
    )
    options.setdefault("api_key", "sk-test")
    return providers.build(name or kind, kind, base, transport=fake.transport(), **options)
