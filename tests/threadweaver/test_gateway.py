"""The OpenAI-compatible gateway (``/v1``) against fake providers: translation both ways (JSON and SSE, tool
calls), keys, client and provider caps (nothing leaves once reached), usage and cost, errors, metrics, /spend.

Spoken as raw HTTP (httpx), as OpenAI's clients send it: the ``openai`` package is not a dependency."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from claw.threadweaver.__main__ import build_console, build_gateway, check
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.providers.model import Message, Request
from claw.threadweaver.router import Route
from pydantic import ValidationError

from tests.doubles.engine import FakeOllama
from tests.doubles.providers import FakeAnthropic, FakeOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
KEYS = {"agent-a": "sk-tw-agent-a-0123456789", "agent-b": "sk-tw-agent-b-0123456789", "ops": "sk-tw-ops-0123456789ab"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def fakes():
    return {
        "openai": FakeOpenAI(Reply("Hello there", input_tokens=1_000_000, output_tokens=0)),  # $0.50 a reply
        "claude": FakeAnthropic(Reply("Hi from Claude", input_tokens=20, output_tokens=10)),
        "crush": FakeOllama(Reply("local words")),
    }


def settings_for(tmp_path, **gateway: Any) -> Settings:
    for name, key in KEYS.items():
        (tmp_path / f"{name}.key").write_text(key + "\n")
    clients = gateway or {
        "agent-a": {"key_file": str(tmp_path / "agent-a.key"), "cap_usd": 0.75},
        "agent-b": {"key_file": str(tmp_path / "agent-b.key"), "providers": ["crush"]},
        "ops": {"key_file": str(tmp_path / "ops.key")},
    }
    return Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1", "models": ["gpt-4o-mini"]},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_TEST_KEY"},
                "crush": {"kind": "crush", "base_url": "http://crush.test:11434", "models": ["gemma3-270m"]},
            },
            "prices": {"openai": {"*": [0.5, 1.0]}, "claude": {"*": [3, 15]}},
            "caps": {"openai": 1.0},
            "gateway": {"clients": clients},
        }
    )


@pytest.fixture
async def app_parts(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    monkeypatch.setenv("TW_TEST_KEY", "sk-ant-test")
    settings = settings_for(tmp_path)
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    gateway = build_gateway(settings, console)
    app = create_app(console, sessions(), gateway=gateway)
    yield app, console, gateway
    console.store.close()


@pytest.fixture
async def http(app_parts):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_parts[0]), base_url="http://tw") as client:
        yield client


def key(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}


async def chat(http, body: dict[str, Any], client: str = "agent-a") -> httpx.Response:
    return await http.post("/v1/chat/completions", json=body, headers=key(client))


def events(response: httpx.Response) -> list[Any]:
    """The SSE ``data:`` payloads, JSON-decoded but for ``[DONE]``."""
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = [line.removeprefix("data: ") for line in response.text.split("\n") if line.startswith("data: ")]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# -- translation ---------------------------------------------------------------------------------------------


async def test_a_json_completion_through_openai_with_usage_and_cost_recorded(http, app_parts, fakes):
    response = await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi"), "max_tokens": 50})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}
    sent = fakes["openai"].bodies[0]
    assert sent["model"] == "gpt-4o-mini" and sent["max_completion_tokens"] == 50
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    ledger = app_parts[1].governance.ledger
    assert ledger.spend(client="agent-a") == 0.5 and ledger.spend(provider="openai") == 0.5
    assert ledger.gateway_usage()["agent-a"]["providers"]["openai"]["tokens_in"] == 1_000_000


async def test_a_stream_through_anthropic_in_openai_chunks_with_usage_last(http, fakes):
    body = {
        "model": "claude/claude-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 64,
    }
    response = await chat(http, body)
    assert response.status_code == 200
    chunks = events(response)
    assert chunks[-1] == "[DONE]"
    data = chunks[:-1]
    assert {c["object"] for c in data} == {"chat.completion.chunk"} and len({c["id"] for c in data}) == 1
    assert {c["model"] for c in data} == {"claude/claude-x"}
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data if c["choices"])
    assert text == "Hi from Claude"
    finish = data[-2]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["usage"] is None for c in data[:-1])
    assert data[-1]["choices"] == [] and data[-1]["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 10,
        "total_tokens": 30,
    }
    sent = fakes["claude"].bodies[0]
    assert sent["system"] == "Be brief.\n\nAnswer in English." and sent["max_tokens"] == 64
    assert sent["model"] == "claude-x" and sent["stream"] is True


async def test_a_stream_without_include_usage_has_no_usage_field(http):
    response = await chat(http, {"model": "crush/gemma3-270m", "messages": user("hi"), "stream": True}, "agent-b")
    data = events(response)[:-1]
    assert all("usage" not in c for c in data)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in data) == "local words"


async def test_a_tool_call_round_trip_in_openai_format_through_anthropic(http, fakes):
    fakes["claude"].replies = [
        Reply("", tool_calls=[{"id": "toolu_01", "name": "weather", "arguments": {"city": "Oslo"}}]),
        Reply("It is sunny in Oslo."),
    ]
    first = await chat(http, {"model": "claude/claude-x", "messages": user("weather in Oslo?"), "tools": [WEATHER]})
    choice = first.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call == {
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "weather", "arguments": json.dumps({"city": "Oslo"})},
    }
    assert choice["message"]["content"] is None
    assert fakes["claude"].bodies[0]["tools"] == [
        {"name": "weather", "description": "The weather in a city", "input_schema": WEATHER["function"]["parameters"]}
    ]
    history = [
        *user("weather in Oslo?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny, 21 °C"},
    ]
    second = await chat(http, {"model": "claude/claude-x", "messages": history, "tools": [WEATHER]})
    assert second.status_code == 200 and second.json()["choices"][0]["message"]["content"] == "It is sunny in Oslo."
    assert fakes["claude"].bodies[1]["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Oslo"}}]},  # noqa: E501
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny, 21 °C"}]},
    ]  # fmt: skip


async def test_streamed_tool_calls_are_openai_deltas(http, fakes):
    fakes["openai"].replies = [Reply("", tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}])]
    body = {"model": "openai/gpt-4o-mini", "messages": user("weather?"), "tools": [WEATHER], "stream": True}
    data = events(await chat(http, body, "ops"))[:-1]
    deltas = [c["choices"][0]["delta"] for c in data if c["choices"][0]["delta"].get("tool_calls")]
    assert deltas == [
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_0abcDEF123xyz",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ]
        }
    ]
    assert data[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert fakes["openai"].bodies[0]["tools"] == [WEATHER]


async def test_an_openclaw_shaped_request(http, fakes):
    """What OpenClaw's openai-completions client sends: developer role for reasoning models, text parts, store,
    reasoning_effort, strict tools, max_completion_tokens, usage in the stream; the unused fields are ignored."""
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": "You are the claw agent."},
            {"role": "user", "content": [{"type": "text", "text": "list"}, {"type": "text", "text": "the nodes"}]},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "store": False,
        "reasoning_effort": "low",
        "max_completion_tokens": 2048,
        "tools": [{**WEATHER, "function": {**WEATHER["function"], "strict": False}}],
    }
    response = await chat(http, body, "ops")
    assert response.status_code == 200 and events(response)[-1] == "[DONE]"
    sent = fakes["openai"].bodies[0]
    assert sent["messages"] == [
        {"role": "system", "content": "You are the claw agent."},
        {"role": "user", "content": "list\nthe nodes"},
    ]
    assert sent["max_completion_tokens"] == 2048 and "store" not in sent and "reasoning_effort" not in sent


# -- governance ----------------------------------------------------------------------------------------------


async def test_a_client_cap_answers_402_and_nothing_more_leaves(http, app_parts, fakes):
    for _ in range(2):  # $0.50 each: under the $0.75 cap before each
        assert (await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")})).status_code == 200
    assert fakes["openai"].count == 2
    for stream in (False, True):
        response = await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("more"), "stream": stream})
        assert response.status_code == 402
        error = response.json()["error"]
        assert error["type"] == "insufficient_quota" and error["code"] == "spend_cap_reached"
        assert "gateway client agent-a" in error["message"] and "$1.0000 of $0.7500" in error["message"]
    other = await chat(http, {"model": "claude/claude-x", "messages": user("hi")})  # the cap covers every provider
    assert other.status_code == 402
    assert fakes["openai"].count == 2 and fakes["claude"].count == 0  # nothing left after the cap
    assert app_parts[1].governance.ledger.spend(client="agent-a") == 1.0


async def test_a_provider_cap_counts_threads_and_gateway_together(http, app_parts, fakes):
    console = app_parts[1]
    thread = console.store.create_thread("openai", "gpt-4o-mini")
    await console.post(thread.id, "from the console")  # $0.50 of the $1.00 openai cap
    assert (await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")}, "ops")).status_code == 200
    response = await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")}, "ops")
    assert response.status_code == 402
    assert "provider openai" in response.json()["error"]["message"]
    assert fakes["openai"].count == 2
    assert (await chat(http, {"model": "claude/claude-x", "messages": user("hi")}, "ops")).status_code == 200


async def test_a_stream_cut_short_is_recorded_as_partial(app_parts, fakes):
    _, console, gateway = app_parts
    fakes["claude"].replies = [Reply("one two three four")]
    client = gateway.clients["ops"]
    request = Request("claude-x", [Message("user", "x" * 400)])
    chunks = await gateway.stream(client, Route("claude", "claude-x"), request)
    assert (await anext(chunks)).text == "one "
    await chunks.aclose()  # the agent went away
    usage = console.governance.ledger.gateway_usage()["ops"]
    assert usage["requests"] == 1 and usage["tokens_in"] == 104 and usage["cost_usd"] > 0
    rows = console.store.db.rows("SELECT status FROM gateway_usage")
    assert rows == [("partial",)]


class FailingMidStream(FakeOpenAI):
    """Sends the first word, then an error event (as OpenAI does when a stream fails after it started)."""

    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        events = super().stream_events(reply, body)[:2]
        return [*events, (None, {"error": {"message": "The server had an error", "type": "server_error"}})]


async def test_a_provider_failing_mid_stream_ends_with_an_error_event_and_partial_usage(app_parts, http, fakes):
    console = app_parts[1]
    broken = FailingMidStream(Reply("Hello there"))
    console.router.providers["openai"]._transport = broken.transport()
    response = await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi"), "stream": True}, "ops")
    assert response.status_code == 200
    data = events(response)
    assert data[1]["choices"][0]["delta"] == {"content": "Hello "}
    assert data[-1]["error"]["code"] == "provider_error" and "[DONE]" not in data
    assert console.store.db.rows("SELECT client, status, tokens_out FROM gateway_usage") == [("ops", "partial", 1)]


# -- errors --------------------------------------------------------------------------------------------------


async def test_keys(http):
    body = {"model": "openai/gpt-4o-mini", "messages": user("hi")}
    missing = await http.post("/v1/chat/completions", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    wrong = await http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-tw-nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {
        "message": "incorrect API key",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
    session = await http.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert session.status_code == 401  # the console's session is not a gateway key
    assert (await http.get("/threads", headers=key("ops"))).status_code == 401  # nor the other way round


async def test_provider_not_allowed_unknown_model_and_malformed_bodies(http, fakes):
    forbidden = await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")}, "agent-b")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "provider_not_allowed"
    for model in ("nope/gpt-4o-mini", "openai/gpt-5-unlisted", "gpt-4o-mini"):
        response = await chat(http, {"model": model, "messages": user("hi")})
        assert response.status_code == 404, model
        assert response.json()["error"]["code"] == "model_not_found" and response.json()["error"]["param"] == "model"
    cases = [
        ({"model": "openai/gpt-4o-mini"}, "messages"),
        ({"model": "openai/gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "openai/gpt-4o-mini", "messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        (
            {
                "model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            },
            "messages[0].content",
        ),
        ({"model": "openai/gpt-4o-mini", "messages": user("x"), "max_tokens": 0}, "max_tokens"),
        ({"model": "openai/gpt-4o-mini", "messages": user("x"), "n": 2}, "n"),
        ({"messages": user("x")}, "model"),
    ]
    for body, param in cases:
        response = await chat(http, body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]
    not_json = await http.post("/v1/chat/completions", content=b"{", headers=key("agent-a"))
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    assert sum(fake.count for fake in fakes.values()) == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_provider_errors_keep_threadweavers_statuses(http, fakes, stream):
    openai = fakes["openai"]
    limited = Reply(status=429, error={"error": {"message": "Rate limit reached", "type": "requests"}})
    rejected = Reply(status=400, error={"error": {"message": "context too long", "type": "invalid_request_error"}})
    openai.replies = [limited, rejected]
    body = {"model": "openai/gpt-4o-mini", "messages": user("hi"), "stream": stream}
    first = await chat(http, body, "ops")
    assert first.status_code == 429 and first.json()["error"]["code"] == "provider_rate_limited"
    assert first.json()["error"]["type"] == "rate_limit_error"
    second = await chat(http, body, "ops")
    assert second.status_code == 400 and "context too long" in second.json()["error"]["message"]
    openai.down = True
    third = await chat(http, body, "ops")
    assert third.status_code == 502 and third.json()["error"]["code"] == "provider_unreachable"
    assert third.json()["error"]["type"] == "server_error"


# -- listings, spend, metrics ----------------------------------------------------------------------------------


async def test_models_per_client(http):
    everything = (await http.get("/v1/models", headers=key("agent-a"))).json()
    assert everything["object"] == "list"
    assert [m["id"] for m in everything["data"]] == ["crush/gemma3-270m", "openai/gpt-4o-mini"]
    assert everything["data"][0] == {"id": "crush/gemma3-270m", "object": "model", "created": 0, "owned_by": "crush"}
    local = (await http.get("/v1/models", headers=key("agent-b"))).json()
    assert [m["id"] for m in local["data"]] == ["crush/gemma3-270m"]
    assert (await http.get("/v1/models/crush/gemma3-270m", headers=key("agent-b"))).status_code == 200
    assert (await http.get("/v1/models/openai/gpt-4o-mini", headers=key("agent-b"))).status_code == 404
    # claude lists no models: not in the listing, but any model name may be sent (as in the console)
    assert (await chat(http, {"model": "claude/any-claude", "messages": user("hi")})).status_code == 200


async def test_spend_has_a_clients_section_and_metrics_count_per_client(http, fakes):
    await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")})
    await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")})
    await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")})  # capped
    await chat(http, {"model": "openai/gpt-4o-mini", "messages": user("hi")}, "agent-b")  # forbidden
    token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
    session = {"Authorization": f"Bearer {token}"}
    spend = (await http.get("/spend", headers=session)).json()
    assert spend["clients"]["agent-a"] == {
        "cap_usd": 0.75,
        "spent_usd": 1.0,
        "cap_tokens": None,
        "spent_tokens": 2_000_000,
        "tokens_in": 2_000_000,
        "tokens_out": 0,
        "requests": 2,
        "providers": {"openai": {"cost_usd": 1.0, "tokens_in": 2_000_000, "tokens_out": 0, "requests": 2}},
    }
    assert spend["clients"]["ops"]["spent_usd"] == 0 and spend["clients"]["ops"]["cap_usd"] is None
    assert spend["total_usd"] == 1.0 and spend["caps"]["openai"] == {"cap_usd": 1.0, "spent_usd": 1.0}
    metrics = (await http.get("/metrics", headers=session)).text
    assert 'threadweaver_gateway_requests_total{client="agent-a",outcome="ok",provider="openai"} 2.0' in metrics
    assert (
        'threadweaver_gateway_requests_total{client="agent-a",outcome="spend_cap_reached",provider="openai"} 1.0'
        in metrics
    )
    assert 'threadweaver_gateway_requests_total{client="agent-b",outcome="forbidden",provider="openai"} 1.0' in metrics
    assert 'threadweaver_gateway_cost_usd_total{client="agent-a"} 1.0' in metrics
    assert 'threadweaver_provider_requests_total{outcome="ok",provider="openai"} 2.0' in metrics
    assert 'threadweaver_refused_total{reason="spend_cap"} 1.0' in metrics


# -- configuration -------------------------------------------------------------------------------------------


def test_gateway_configuration_is_validated(tmp_path):
    with pytest.raises(ValidationError, match=r"must match \[a-z0-9_-\]\+"):
        settings_for(tmp_path, **{"Agent A": {"key_file": str(tmp_path / "ops.key")}})
    with pytest.raises(ValidationError, match=r"clients\.a\.providers names providers that are not configured"):
        settings_for(tmp_path, a={"key_file": str(tmp_path / "ops.key"), "providers": ["nope"]})
    with pytest.raises(ValidationError, match="cap_usd"):
        settings_for(tmp_path, a={"key_file": str(tmp_path / "ops.key"), "cap_usd": -1})
    (tmp_path / "short.key").write_text("short\n")
    same = settings_for(tmp_path, a={"key_file": str(tmp_path / "ops.key")}, b={"key_file": str(tmp_path / "ops.key")})
    with pytest.raises(ValueError, match="gateway clients a and b have the same key"):
        same.gateway.keys()
    short = settings_for(tmp_path, a={"key_file": str(tmp_path / "short.key")})
    with pytest.raises(ValueError, match="at least 16 characters"):
        short.gateway.keys()
    missing = settings_for(tmp_path, a={"key_file": str(tmp_path / "missing.key")})
    assert any(problem.startswith("gateway: ") for problem in check(missing))
