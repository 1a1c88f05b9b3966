"""The HTTP API against fake providers: auth, threads, messages (JSON and SSE), branching, search, spend, errors."""

from __future__ import annotations

import json

import httpx
import pytest
from claw.threadweaver import auth
from claw.threadweaver.__main__ import build_console, main
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings

from tests.doubles.providers import FakeAnthropic, FakeOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio


@pytest.fixture
def fakes():
    return {
        "openai": FakeOpenAI(Reply("Hello there", input_tokens=1_000_000, output_tokens=0)),
        "claude": FakeAnthropic(Reply("Hi from Claude")),
    }


@pytest.fixture
async def client(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1"},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_TEST_KEY"},
            },
            "prices": {"openai": {"*": [0.5, 1.0]}},
            "caps": {"openai": 1.0},
        }
    )
    monkeypatch.setenv("TW_TEST_KEY", "sk-ant-test")
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    app = create_app(console, sessions())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http
    console.store.close()


async def test_everything_but_healthz_needs_a_session(client):
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://tw")
    assert (await anonymous.get("/healthz")).json()["status"] == "ok"
    for method, path in [("GET", "/threads"), ("GET", "/metrics"), ("GET", "/search?q=x"), ("GET", "/spend")]:
        response = await anonymous.request(method, path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    assert (await anonymous.post("/login", json={"password": "wrong"})).status_code == 401
    login = await anonymous.post("/login", json={"password": PASSWORD})
    assert (
        "httponly" in login.headers["set-cookie"].lower() and "samesite=strict" in login.headers["set-cookie"].lower()
    )
    assert (await anonymous.get("/threads")).status_code == 200  # the cookie works too


async def test_a_conversation_with_a_branch_and_a_provider_switch(client, fakes):
    thread = (await client.post("/threads", json={"provider": "openai", "model": "gpt-4o-mini"})).json()
    first = (await client.post(f"/threads/{thread['id']}/messages", json={"content": "hi"})).json()
    assert first["reply"]["content"] == "Hello there" and first["reply"]["cost_usd"] == 0.5
    assert first["reply"]["parent_id"] == first["user"]["id"]
    # Switch to Anthropic mid-thread and answer the first question again: a branch.
    await client.patch(f"/threads/{thread['id']}", json={"provider": "claude", "model": "claude-x"})
    second = (
        await client.post(
            f"/threads/{thread['id']}/messages", json={"content": "hi again", "parent_id": first["user"]["id"]}
        )
    ).json()
    assert second["reply"]["content"] == "Hi from Claude" and second["reply"]["provider"] == "claude"
    assert fakes["claude"].bodies[0]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "hi again"}]}
    ]
    tree = (await client.get(f"/threads/{thread['id']}")).json()
    assert len(tree["messages"]) == 4 and tree["leaves"] == [first["reply"]["id"], second["reply"]["id"]]
    diff = (
        await client.get(
            f"/threads/{thread['id']}/compare", params={"a": first["reply"]["id"], "b": second["reply"]["id"]}
        )
    ).json()
    assert diff["common"] == [first["user"]["id"]]
    hits = (await client.get("/search", params={"q": "Claude"})).json()
    assert hits == [{"thread_id": thread["id"], "message_id": second["reply"]["id"], "snippet": "Hi from [Claude]"}]


async def test_streaming_over_sse(client):
    thread = (await client.post("/threads", json={"provider": "claude", "model": "claude-x"})).json()
    response = await client.post(f"/threads/{thread['id']}/messages/stream", json={"content": "hello"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["user", "chunk", "chunk", "chunk", "done"]
    assert "".join(e["text"] for e in events if e["type"] == "chunk") == "Hi from Claude"
    stored = (await client.get(f"/threads/{thread['id']}")).json()["messages"][-1]
    assert (stored["content"], stored["status"], stored["id"]) == (
        "Hi from Claude",
        "complete",
        events[-1]["message_id"],
    )


async def test_precise_errors(client, fakes):
    assert (await client.get("/threads/nope")).status_code == 404
    assert (await client.post("/threads/nope/messages", json={"content": "x"})).json()["error"]["code"] == "not_found"
    bad = await client.post("/threads", json={"provider": "gemini", "model": "x"})
    assert (
        bad.status_code == 422
        and "unknown provider 'gemini'; configured: claude, openai" in bad.json()["error"]["message"]
    )
    assert (await client.post("/threads", json={"provider": "openai"})).status_code == 422
    thread = (await client.post("/threads", json={"provider": "openai", "model": "m"})).json()
    assert (await client.post(f"/threads/{thread['id']}/messages", json={"content": ""})).status_code == 422
    for _ in range(2):  # $0.50 each, cap $1
        assert (await client.post(f"/threads/{thread['id']}/messages", json={"content": "x"})).status_code == 200
    capped = await client.post(f"/threads/{thread['id']}/messages", json={"content": "x"})
    assert capped.status_code == 402
    assert capped.json()["error"] | {"message": ""} == {
        "code": "spend_cap_reached",
        "message": "",
        "scope": "provider",
        "name": "openai",
        "spent_usd": 1.0,
        "cap_usd": 1.0,
        "in_flight_usd": 0,  # what requests under way hold
        "request_usd": 0,  # this request's worst case (0: the cap is reached already)
    }
    assert (await client.post(f"/threads/{thread['id']}/messages/stream", json={"content": "x"})).status_code == 402
    assert fakes["openai"].count == 2
    spend = (await client.get("/spend")).json()
    assert spend["caps"]["openai"] == {"cap_usd": 1.0, "spent_usd": 1.0}
    fakes["claude"].replies = [
        Reply(status=429, error={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    ]
    claude = (await client.post("/threads", json={"provider": "claude", "model": "c"})).json()
    limited = await client.post(f"/threads/{claude['id']}/messages", json={"content": "x"})
    assert limited.status_code == 429 and "slow down" in limited.json()["error"]["message"]


async def test_metrics(client):
    thread = (await client.post("/threads", json={"provider": "claude", "model": "claude-x"})).json()
    await client.post(f"/threads/{thread['id']}/messages", json={"content": "x"})
    text = (await client.get("/metrics")).text
    assert 'threadweaver_provider_requests_total{outcome="ok",provider="claude"} 1.0' in text
    assert 'threadweaver_tokens_total{direction="in",provider="claude"} 11.0' in text
    assert "threadweaver_provider_latency_seconds_bucket" in text


def test_hash_password_command(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["hash-password"]) == 0
    stored = capsys.readouterr().out.strip()
    assert auth.verify_password("a long password", stored) and not auth.verify_password("other", stored)
