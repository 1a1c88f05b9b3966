"""The streaming hot paths' shortcuts give what the plain ways gave: line splitting straight from the body's bytes,
the gateway's chunk events from a template, a streamed reply stored in batches (by time or size, not per chunk)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from claw.threadweaver.gateway import Completion, sse
from claw.threadweaver.providers.base import lines, ndjson, sse_events
from claw.threadweaver.store import ReplyWriter, ThreadStore

KEY = "0f" * 32


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "threads.db", KEY) as opened:
        yield opened


def response(*parts: bytes, content_type: str = "text/event-stream") -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    return httpx.Response(200, headers={"content-type": content_type}, content=body())


async def collect(found: AsyncIterator) -> list:
    return [item async for item in found]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((b"a\nb\n",), ["a", "b"]),
        ((b"a\r\nb\r\n\r\n",), ["a", "b", ""]),
        ((b"a\r", b"\nb\r", b"c"), ["a", "b", "c"]),  # a CRLF split across reads is one line end
        ((b"a\r", b"\r\n"), ["a", ""]),
        ((b"da", b"ta: x", b"\n\n"), ["data: x", ""]),
        ((b"caf\xc3", b"\xa9\n"), ["caf\u00e9"]),  # a character split across reads
        ((b"x\n\r",), ["x", ""]),
        ((b"",), []),
    ],
)
async def test_lines_split_at_lf_crlf_and_cr_across_reads(parts, expected):
    assert await collect(lines(response(*parts))) == expected


@pytest.mark.anyio
async def test_a_raw_line_separator_inside_json_does_not_split_an_event():
    text = "one\u2028two\u0085three"
    data = json.dumps({"content": text}, ensure_ascii=False).encode()
    events = await collect(sse_events(response(b"data: " + data[:9], data[9:] + b"\n\n", b"data: [DONE]\n\n")))
    assert events == [(None, data.decode()), (None, "[DONE]")]
    assert json.loads(events[0][1])["content"] == text
    assert await collect(ndjson(response(data + b"\n" + data, content_type="application/x-ndjson"))) == [
        {"content": text},
        {"content": text},
    ]


def test_a_chunk_event_from_the_template_is_the_plain_one():
    completion = Completion('fake/m"odel {"content": null}')
    for text in ["hi", ' w\u00f6rld "quoted"\n', "", "\u2028\U0001f4a5", "{}"]:
        for usage in (False, True):
            assert completion.content_event(text, usage) == sse(completion.chunk({"content": text}, usage=usage))


def test_a_streamed_reply_is_stored_every_quarter_second_or_16_kib(store, monkeypatch):
    thread = store.create_thread("openai", "m")
    user = store.add_message(thread.id, None, "user", "count")
    now = [100.0]
    monkeypatch.setattr("claw.threadweaver.store.time.monotonic", lambda: now[0])
    writer = ReplyWriter.start(store, thread.id, user.id, provider="openai", model="m")
    assert [writer.buffer(f"w{n} ") for n in range(50)] == [False] * 50  # chunks alone never make a write
    assert store.message(writer.message.id).content == ""
    now[0] += 0.25
    assert writer.buffer("late ") is True
    writer.flush()
    assert store.message(writer.message.id).content.endswith("w49 late ")
    assert writer.buffer("x" * 16384) is True  # or once 16 KiB wait
    writer.add("")  # nothing to keep: no write
    done = writer.finish(tokens_in=1, tokens_out=2)
    assert done.content == "".join(f"w{n} " for n in range(50)) + "late " + "x" * 16384
    assert done.status == "complete"
