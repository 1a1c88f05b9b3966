"""Continuing a reply (issue #17, "regenerate/continue a reply"): the rest of a reply cut by the output limit, an
abort or a crash, asked of the provider and model that wrote it and appended to the same message (stored,
searchable, encrypted), streamed like any reply, under the same caps, reservation and hooks; precise 4xx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.console import CONTINUE_PROMPT, ReplyBusy

from tests.doubles.providers import FakeAnthropic, PacedOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
KEY = "cd" * 32
START = "Once upon a time a weaver"
REST = " met a marmosetword by the river."  # "marmosetword": in no other text of these tests
# $1 per 1M tokens either way; the fakes report 11 in and 7 out unless told: $0.000018 a reply
PRICES = {"openai": {"*": [1, 1]}, "claude": {"*": [1, 1]}}


@pytest.fixture
def fakes():
    return {
        "openai": PacedOpenAI(Reply(START), Reply(REST), delay=0.01),
        "claude": FakeAnthropic(Reply("from claude")),
    }


@pytest.fixture
async def app_parts(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", KEY)
    monkeypatch.setenv("TW_TEST_KEY", "sk-ant-test")
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1"},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_TEST_KEY"},
            },
            "prices": PRICES,
        }
    )
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    app = create_app(console, sessions())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http, console
    console.store.close()


async def new_thread(http, **fields) -> dict:
    response = await http.post("/threads", json={"provider": "openai", "model": "gpt-x", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def say(http, thread: dict, text: str, **fields) -> dict:
    response = await http.post(f"/threads/{thread['id']}/messages", json={"content": text, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def sse_events(lines: list[str]) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: ")]


def open_reservations(console) -> list:
    return console.governance.ledger.open_reservations()


async def test_continue_appends_the_rest_to_the_same_reply(app_parts, fakes, tmp_path):
    http, console = app_parts
    thread = await new_thread(http)
    turn = await say(http, thread, "tell me a story")
    reply = turn["reply"]
    answer = await http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    continued = body["reply"]
    # The same message: its text and its usage grew; nothing new in the tree.
    assert continued["id"] == reply["id"] and continued["parent_id"] == turn["user"]["id"]
    assert continued["content"] == START + REST and continued["status"] == "complete"
    assert (continued["tokens_in"], continued["tokens_out"]) == (22, 14)
    assert continued["cost_usd"] == pytest.approx(2 * 18e-6)
    assert [m["id"] for m in body["messages"]] == [reply["id"]] and body["approval_required"] is None
    # Asked of the provider with the history, the reply last, and the instruction (sent, never stored).
    assert fakes["openai"].bodies[-1]["messages"] == [
        {"role": "user", "content": "tell me a story"},
        {"role": "assistant", "content": START},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    tree = (await http.get(f"/threads/{thread['id']}")).json()
    assert [(m["role"], m["content"]) for m in tree["messages"]] == [
        ("user", "tell me a story"),
        ("assistant", START + REST),
    ]
    # Searchable, and billed to the thread like any reply; no reservation left open.
    hits = (await http.get("/search", params={"q": "marmosetword"})).json()
    assert [hit["message_id"] for hit in hits] == [reply["id"]]
    spend = (await http.get("/spend")).json()
    assert spend["threads"][thread["id"]]["cost_usd"] == pytest.approx(2 * 18e-6)
    assert open_reservations(console) == [] and console.governance._held == {}
    # Encrypted like everything else: the continuation's words are nowhere in the files in the clear.
    console.store.db.checkpoint()
    for path in tmp_path.glob("threads.db*"):
        assert b"marmosetword" not in Path(path).read_bytes()


async def test_continue_streams_the_rest(app_parts, fakes):
    http, _console = app_parts
    thread = await new_thread(http)
    reply = (await say(http, thread, "tell me a story"))["reply"]
    path = f"/threads/{thread['id']}/messages/{reply['id']}/continue/stream"
    async with http.stream("POST", path) as response:
        assert response.status_code == 200
        events = sse_events([line async for line in response.aiter_lines()])
    kinds = [event["type"] for event in events]
    assert kinds[0] == "chunk" and kinds[-1] == "done" and "user" not in kinds
    assert "".join(e["text"] for e in events if e["type"] == "chunk") == REST  # the continuation only
    done = events[-1]
    assert done["message_id"] == reply["id"] and done["usage"] == {"input_tokens": 22, "output_tokens": 14}
    stored = (await http.get(f"/threads/{thread['id']}/path/{reply['id']}")).json()[-1]
    assert (stored["content"], stored["status"]) == (START + REST, "complete")


async def test_continue_uses_the_provider_that_wrote_the_reply(app_parts, fakes):
    http, _console = app_parts
    thread = await new_thread(http)
    reply = (await say(http, thread, "tell me a story"))["reply"]
    await http.patch(f"/threads/{thread['id']}", json={"provider": "claude", "model": "claude-x"})
    answer = await http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["reply"]["provider"], answer.json()["reply"]["model"]) == ("openai", "gpt-x")
    assert fakes["claude"].count == 0 and fakes["openai"].count == 2


async def test_continue_refusals_are_precise_4xx(app_parts, fakes):
    http, console = app_parts
    thread = await new_thread(http)
    turn = await say(http, thread, "tell me a story")
    reply, user = turn["reply"], turn["user"]
    base = f"/threads/{thread['id']}/messages"

    async def refused(path: str, status: int, code: str, words: str = "") -> None:
        for suffix in ("", "/stream"):
            answer = await http.post(path + suffix)
            assert answer.status_code == status, answer.text
            error = answer.json()["error"]
            assert error["code"] == code and words in error["message"], error

    await refused(f"{base}/{user['id']}/continue", 422, "not_continuable", "only a reply can be continued")
    await refused(f"{base}/nope/continue", 404, "not_found")
    await refused(f"/threads/nope/messages/{reply['id']}/continue", 404, "not_found")
    elsewhere = await new_thread(http)
    await refused(f"/threads/{elsewhere['id']}/messages/{reply['id']}/continue", 404, "not_found")
    store = console.store
    empty = store.add_message(thread["id"], user["id"], "assistant", "", status="partial", provider="openai")
    await refused(f"{base}/{empty.id}/continue", 422, "not_continuable", "no text to continue")
    blocked = store.add_message(thread["id"], user["id"], "assistant", "", status="blocked", provider="openai")
    await refused(f"{base}/{blocked.id}/continue", 422, "not_continuable", "blocked by a hook")
    calls = [{"id": "c1", "name": "fs__read", "arguments": {}}]
    caller = store.add_message(thread["id"], user["id"], "assistant", "let me look", tool_calls=calls)
    await refused(f"{base}/{caller.id}/continue", 422, "not_continuable", "called tools")
    # A reply the conversation went on from: continuing it would change what the later messages answered.
    await say(http, thread, "and then?", parent_id=reply["id"])
    await refused(f"{base}/{reply['id']}/continue", 409, "reply_answered", "branch from it instead")
    gone = store.add_message(thread["id"], user["id"], "assistant", "old text", provider="retired", model="m")
    await refused(f"{base}/{gone.id}/continue", 422, "unknown_provider")
    assert fakes["openai"].count == 2  # the two turns: none of the refusals reached the provider


async def test_a_cap_that_does_not_allow_the_continuation_refuses_it_with_no_request(app_parts, fakes):
    http, console = app_parts
    # The first reply's worst case (its prompt's bound and 1024 out, at $1 per 1M) fits; the continuation's,
    # with the reply and the instruction in its prompt, does not fit beside what the first one spent.
    thread = await new_thread(http, cap_usd=0.00115)
    turn = await say(http, thread, "tell me a story")
    reply = turn["reply"]
    asked = fakes["openai"].count
    for suffix in ("", "/stream"):
        answer = await http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue{suffix}")
        assert answer.status_code == 402, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["scope"]) == ("spend_cap_reached", "thread") and error["request_usd"] > 0
    assert fakes["openai"].count == asked  # nothing was sent
    tree = (await http.get(f"/threads/{thread['id']}")).json()
    kept = next(m for m in tree["messages"] if m["id"] == reply["id"])
    assert kept["content"] == START and kept["cost_usd"] == reply["cost_usd"]
    notes = [m for m in tree["messages"] if m["role"] == "note"]
    assert len(notes) == 2 and {n["parent_id"] for n in notes} == {reply["id"]}  # under the reply
    assert open_reservations(console) == [] and console.governance._held == {}
    # Noted refusals do not make it "answered": with the cap raised, it continues.
    await http.patch(f"/threads/{thread['id']}", json={"cap_usd": 1.0})
    answer = await http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue")
    assert answer.status_code == 200 and answer.json()["reply"]["content"] == START + REST


async def test_an_aborted_continuation_is_billed_and_its_partial_text_kept(app_parts, fakes):
    http, console = app_parts
    long_rest = " " + " ".join(f"w{n}" for n in range(200))
    fakes["openai"].replies = [Reply(START), Reply(long_rest, chunks=[f" w{n}" for n in range(200)])]
    thread = await new_thread(http, cap_usd=1.0)
    reply = (await say(http, thread, "tell me a story"))["reply"]
    events = await console.continue_stream(thread["id"], reply["id"])
    got = ""
    async for event in events:
        if event["type"] == "chunk":
            got += event["text"]
            if len(got) >= 20:
                break  # the client went away mid-continuation
    await events.aclose()
    stored = console.store.message(reply["id"])
    assert stored.status == "partial" and stored.content.startswith(START + got)
    assert len(stored.content) < len(START + long_rest)
    # Billed for what was produced: the first reply's usage, plus the continuation's prompt (≈len/4 and 4 a
    # message, as estimate_usage counts) and the text that arrived, ≈len/4.
    prompt = (len("tell me a story") // 4 + 4) + (len(START) // 4 + 4) + (len(CONTINUE_PROMPT) // 4 + 4)
    assert stored.tokens_in == reply["tokens_in"] + prompt
    assert reply["tokens_out"] < stored.tokens_out <= reply["tokens_out"] + len(got) // 4 + 2
    assert stored.cost_usd == pytest.approx((stored.tokens_in + stored.tokens_out) * 1e-6)
    assert console.governance.ledger.spend(thread_id=thread["id"]) == pytest.approx(stored.cost_usd)
    assert open_reservations(console) == [] and console.governance._held == {}
    # What was kept can be continued again.
    fakes["openai"].replies = [Reply(" the end.")]
    again = await console.continue_reply(thread["id"], reply["id"])
    assert again.reply.content.endswith(" the end.") and again.reply.status == "complete"


async def test_a_reply_being_written_cannot_be_continued_meanwhile(app_parts, fakes):
    http, console = app_parts
    thread = await new_thread(http)
    reply = (await say(http, thread, "tell me a story"))["reply"]
    fakes["openai"].replies = [Reply(long := " and on" * 30)]
    events = await console.continue_stream(thread["id"], reply["id"])
    first = await anext(events)
    assert first["type"] == "chunk"
    with pytest.raises(ReplyBusy, match="being written right now"):
        await console.continue_stream(thread["id"], reply["id"])
    answer = await http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "reply_busy"
    async for _event in events:
        pass
    assert console.store.message(reply["id"]).content == START + long
    # Once it ended, it may be continued again.
    assert (await console.continue_reply(thread["id"], reply["id"])).reply.status == "complete"


async def test_a_stream_in_progress_cannot_be_continued(app_parts, fakes):
    http, console = app_parts
    thread = await new_thread(http)
    fakes["openai"].replies = [Reply(" and on" * 30)]
    events = await console.stream(thread["id"], "go on")
    assert (await anext(events))["type"] == "user"
    assert (await anext(events))["type"] == "chunk"
    writing = next(m for m in console.store.messages(thread["id"]) if m.role == "assistant")
    with pytest.raises(ReplyBusy):
        await console.continue_reply(thread["id"], writing.id)
    await events.aclose()
    assert not console._writing  # the aborted stream is no longer being written
