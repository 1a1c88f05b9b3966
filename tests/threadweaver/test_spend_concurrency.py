"""Caps that hold under concurrency (issue #17): each request's worst case is reserved against the thread's, the
provider's and the gateway client's caps before it leaves, in-flight reservations count, and the reservation is
settled to the real usage afterwards. Aborted streams are billed, a model without a price on a priced provider is
refused, ``validate``/``check`` reject caps without prices, local providers get token caps, and gateway clients
get ``max_output_tokens`` and ``max_history_turns``.

The fake providers answer after a delay, so 20 requests sent together are all in flight at once; each fake counts
the requests that reached it.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from claw.threadweaver.__main__ import build_console, build_gateway, check, main
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.console import Console, Limits
from claw.threadweaver.governance import (
    DEFAULT_OUTPUT_LIMIT,
    FRAME_TOKENS,
    TOOLS_TOKENS,
    Cap,
    Governance,
    ModelNotPriced,
    Price,
    PriceTable,
    SpendCapReached,
    TokenCapReached,
    TokenCaps,
    estimate_usage,
    prompt_bound,
    trim_history,
    usage_or_estimate,
)
from claw.threadweaver.ledger import Ledger
from claw.threadweaver.providers.errors import ProviderError
from claw.threadweaver.providers.model import Message, Request, ToolCall, ToolSpec, Usage
from claw.threadweaver.router import Hold, Route, Router
from claw.threadweaver.store import ThreadStore
from pydantic import ValidationError

from tests.doubles.engine import FakeOllama
from tests.doubles.providers import FakeOpenAI, Reply, adapter
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
DELAY = 0.5  # every fake answer takes this long: 20 requests sent together are all in flight at once
# $0.001 a token either way: a request of "hi" (10 tokens at most) with 90 output tokens may cost $0.10 at most
PRICES = {"openai": {"gpt-4o-mini": (1000, 1000)}}
REPLY = Reply("fine thanks", input_tokens=5, output_tokens=45)  # $0.05 a reply


class SlowOpenAI(FakeOpenAI):
    """The fake OpenAI, answering after :data:`DELAY`; a stream's words come :data:`DELAY` apart."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_slowly)

    async def handle_slowly(self, request: httpx.Request) -> httpx.Response:
        response = self.handle(request)  # counted as it arrives
        await anyio.sleep(DELAY)
        return response

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        blocks = [block + b"\n\n" for block in super().stream(reply, body).content.split(b"\n\n") if block]

        async def paced() -> AsyncIterator[bytes]:
            for block in blocks:
                yield block
                await anyio.sleep(DELAY)

        return httpx.Response(200, content=paced(), headers={"content-type": "text/event-stream"})


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "t.db", "k" * 64) as opened:
        yield opened


def make_console(store, fakes, caps=None, token_caps=None, prices=PRICES):
    governance = Governance(Ledger(store.db), PriceTable(prices), caps or {}, token_caps)
    router = Router({name: adapter(fake, name) for name, fake in fakes.items()}, governance)
    return Console(store, router, governance, limits=Limits(max_output_tokens=90))


async def together(calls) -> list[Any]:
    """Run the calls at once; their results, or the exceptions they raised."""

    async def one(call):
        try:
            return await call()
        except Exception as err:  # the refusals are what is looked at
            return err

    return await asyncio.gather(*(one(call) for call in calls))


def spend_before(store, thread_id: str, provider: str, cost: float) -> None:
    """Spend recorded earlier: an old reply of ``cost``."""
    store.add_message(thread_id, None, "assistant", "earlier", provider=provider, model="gpt-4o-mini", cost_usd=cost)


# -- 20 at once against a nearly spent cap -----------------------------------------------------------------------


async def test_twenty_concurrent_turns_at_a_nearly_spent_thread_cap(store):
    openai = SlowOpenAI(REPLY)
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o-mini", cap_usd=1.0)
    spend_before(store, thread.id, "openai", 0.75)  # $0.25 left: room for 2 requests of at most $0.10
    results = await together([lambda: console.post(thread.id, "hi", root=True)] * 20)
    replies = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(err, SpendCapReached) and err.scope == "thread" for err in refused)
    # Only the requests the cap allowed reached the provider: 2 at once (more only if the first ones were
    # settled before the last ones started, on a slow machine); the spend stays within the cap.
    assert 2 <= len(replies) == openai.count < 20
    assert console.governance.ledger.spend(thread_id=thread.id) == pytest.approx(0.75 + 0.05 * len(replies))
    assert console.governance.ledger.spend(thread_id=thread.id) <= 1.0
    assert any("held by requests in flight" in str(err) for err in refused)
    assert console.governance._held == {}  # every reservation released


async def test_twenty_concurrent_turns_at_a_nearly_spent_provider_cap(store):
    openai = SlowOpenAI(REPLY)
    console = make_console(store, {"openai": openai}, caps={"openai": 3.0})
    spend_before(store, store.create_thread("openai", "gpt-4o-mini").id, "openai", 2.65)  # $0.35: room for 3
    threads = [store.create_thread("openai", "gpt-4o-mini") for _ in range(20)]
    results = await together([lambda t=t: console.post(t.id, "hi") for t in threads])
    replies = [r for r in results if not isinstance(r, Exception)]
    assert 3 <= len(replies) == openai.count < 20
    assert all(isinstance(r, SpendCapReached) and r.scope == "provider" for r in results if r not in replies)
    assert console.governance.ledger.spend(provider="openai") == pytest.approx(2.65 + 0.05 * len(replies))
    assert console.governance.ledger.spend(provider="openai") <= 3.0


async def test_twenty_concurrent_streams_at_a_nearly_spent_thread_cap(store):
    openai = SlowOpenAI(REPLY)
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o-mini", cap_usd=1.0)
    spend_before(store, thread.id, "openai", 0.75)

    async def streamed():
        return [event async for event in await console.stream(thread.id, "hi", root=True)]

    results = await together([streamed] * 20)
    done = [r for r in results if not isinstance(r, Exception) and r[-1]["type"] == "done"]
    assert 2 <= len(done) == openai.count < 20
    assert all(isinstance(r, SpendCapReached) for r in results if r not in done)  # refused before the first event
    spent = console.governance.ledger.spend(thread_id=thread.id)
    assert spent == pytest.approx(0.75 + 0.05 * len(done)) and spent <= 1.0


# -- the HTTP answers -------------------------------------------------------------------------------------------

KEYS = {"agent": "sk-tw-agent-0123456789", "ops": "sk-tw-ops-0123456789ab", "worker": "sk-tw-worker-0123456789"}


def settings_for(tmp_path, clients: dict[str, Any] | None = None, **more: Any) -> Settings:
    """``clients``: more gateway clients, besides agent (capped in USD) and ops (uncapped)."""
    for name, key in KEYS.items():
        (tmp_path / f"{name}.key").write_text(key + "\n")
    clients = {
        "agent": {"key_file": str(tmp_path / "agent.key"), "cap_usd": 1.0, "max_output_tokens": 90},
        "ops": {"key_file": str(tmp_path / "ops.key")},
        **(clients or {}),
    }
    (tmp_path / "password").write_text(PASSWORD)
    return Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1"},
                "crush": {"kind": "crush", "base_url": "http://crush.test:11434"},
            },
            "prices": {"openai": {"gpt-4o-mini": [1000, 1000]}},
            "caps": {"openai": 20.0},
            "gateway": {"clients": clients},
            **more,
        }
    )


@pytest.fixture
async def app_parts(tmp_path, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    fakes = {"openai": SlowOpenAI(REPLY), "crush": FakeOllama(Reply("local words", input_tokens=5, output_tokens=45))}
    fakes["crush"].slow = {"qwen3:8b": DELAY}
    settings = settings_for(tmp_path, token_caps={"crush": {"total": 1000, "per_client": 250, "per_thread": 250}})
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    gateway = build_gateway(settings, console)
    app = create_app(console, sessions(), gateway=gateway)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        yield http, console, fakes


def chat(http, body: dict[str, Any], client: str = "agent"):
    return http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEYS[client]}"})


async def test_twenty_concurrent_gateway_requests_at_a_nearly_spent_client_cap(app_parts):
    http, console, fakes = app_parts
    console.governance.ledger.record_gateway_usage("agent", "openai", "gpt-4o-mini", cost_usd=0.75)  # $0.25 left
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    responses = await together([lambda: chat(http, body)] * 10 + [lambda: chat(http, {**body, "stream": True})] * 10)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert 2 <= len(ok) == fakes["openai"].count < 20
    for response in refused:
        assert response.status_code == 402
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "spend_cap_reached")
        assert "gateway client agent would be exceeded" in error["message"]
    spent = console.governance.ledger.spend(client="agent")
    assert spent == pytest.approx(0.75 + 0.05 * len(ok)) and spent <= 1.0


async def test_a_console_refusal_is_402_with_the_worst_case(app_parts, tmp_path):
    http, console, fakes = app_parts
    login = await http.post("/login", json={"password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    thread = console.store.create_thread("openai", "gpt-4o-mini", cap_usd=0.05, max_output_tokens=90)
    response = await http.post(f"/threads/{thread.id}/messages", json={"content": "hi"}, headers=headers)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "spend_cap_reached" and error["scope"] == "thread" and error["name"] == thread.id
    assert error["cap_usd"] == 0.05 and error["spent_usd"] == 0 and error["in_flight_usd"] == 0
    assert error["request_usd"] == pytest.approx(0.1)  # "hi" and its frame, 10 tokens, and 90 out at $0.001
    assert "may use up to $0.1000" in error["message"] and "$0.0500 is left" in error["message"]
    assert fakes["openai"].count == 0
    unpriced = console.store.create_thread("openai", "gpt-4o")  # priced provider, model not in the table
    response = await http.post(f"/threads/{unpriced.id}/messages/stream", json={"content": "hi"}, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "model_not_priced" and (error["provider"], error["model"]) == ("openai", "gpt-4o")
    assert "prices.openai.gpt-4o" in error["message"] and fakes["openai"].count == 0


async def test_gateway_unpriced_model_is_400_naming_the_model(app_parts):
    http, _, fakes = app_parts
    response = await chat(http, {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "ops")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_priced", "model") and "gpt-4o" in error["message"]
    assert fakes["openai"].count == 0


# -- token caps for a local engine --------------------------------------------------------------------------------


async def test_token_caps_hold_for_concurrent_requests_to_a_local_engine(app_parts):
    http, console, fakes = app_parts
    body = {"model": "crush/qwen3:8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 90}
    # "hi": at most 10 prompt tokens, + 90 out: 100 tokens held each; 250 per client: 2 at once
    responses = await together([lambda: chat(http, body, "ops")] * 20)
    ok = [r for r in responses if r.status_code == 200]
    assert 2 <= len(ok) == sum(1 for r in fakes["crush"].requests if r[1] == "/api/chat") <= 4
    errors = [r.json()["error"] for r in responses if r.status_code != 200]
    assert {e["code"] for e in errors} == {"token_cap_reached"}
    assert (
        "gateway client ops on provider crush" in errors[0]["message"]
        and "token_caps.crush.per_client" in (errors[0]["message"])
    )
    assert console.governance.ledger.tokens(client="ops", provider="crush") == 50 * len(ok) <= 250
    # a thread's own token cap: 250 as well
    thread = console.store.create_thread("crush", "qwen3:8b", max_output_tokens=90)
    results = await together([lambda: console.post(thread.id, "hi", root=True)] * 5)
    answered = sum(1 for r in results if not isinstance(r, Exception))
    refusal = next(r for r in results if isinstance(r, Exception))
    assert isinstance(refusal, TokenCapReached) and refusal.details()["cap_tokens"] == 250
    assert console.governance.ledger.tokens(thread_id=thread.id) == 50 * answered <= 250


# -- a gateway client's own cap in tokens (issue #18: token caps for crush, which costs $0) --------------------------

WORKER_CAP = 1000  # the worker's cap_tokens, over all providers


@pytest.fixture
async def worker_parts(tmp_path, monkeypatch):
    """The gateway with a client "worker" capped in tokens only (no cap_usd), and no provider token caps."""
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    fakes = {"openai": SlowOpenAI(REPLY), "crush": FakeOllama(Reply("local words", input_tokens=5, output_tokens=45))}
    fakes["crush"].slow = {"qwen3:8b": DELAY}
    worker = {"key_file": str(tmp_path / "worker.key"), "cap_tokens": WORKER_CAP, "max_output_tokens": 90}
    settings = settings_for(tmp_path, clients={"worker": worker})
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    app = create_app(console, sessions(), gateway=build_gateway(settings, console))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        yield http, console, fakes


def crush_chats(fake: FakeOllama) -> int:
    return sum(1 for request in fake.requests if request[1] == "/api/chat")


async def test_twenty_concurrent_gateway_requests_against_a_client_token_cap_with_room_for_one(worker_parts):
    http, console, fakes = worker_parts
    ledger = console.governance.ledger
    # 900 tokens spent already, on another provider: the cap counts every provider's tokens. 100 are left: room
    # for one request of "hi" (10 tokens at most) and 90 out, to crush, which costs nothing.
    ledger.record_gateway_usage("worker", "openai", "gpt-4o-mini", tokens_in=800, tokens_out=100)
    body = {"model": "crush/qwen3:8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500}
    stream = {**body, "stream": True}
    responses = await together([lambda: chat(http, body, "worker")] * 10 + [lambda: chat(http, stream, "worker")] * 10)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1 == crush_chats(fakes["crush"])  # only the one that fitted reached the engine
    for response in (r for r in responses if r.status_code != 200):
        assert response.status_code == 402
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "token_cap_reached")
        assert "token cap for gateway client worker " in error["message"]
        assert "gateway.clients.worker.cap_tokens" in error["message"]
    assert ledger.tokens(client="worker") == 900 + 50 <= WORKER_CAP  # billed at the engine's usage: 5 in, 45 out
    assert ledger.spend(client="worker") == 0  # a USD cap would never have stopped it
    assert console.governance._held == {} and ledger.open_reservations() == []
    # 50 left: a cloud request's worst case (10 + 90, the client's max_output_tokens) does not fit; never sent
    cloud = await chat(http, {**body, "model": "openai/gpt-4o-mini"}, "worker")
    assert cloud.status_code == 402 and cloud.json()["error"]["code"] == "token_cap_reached"
    assert "may use up to 100 tokens" in cloud.json()["error"]["message"] and fakes["openai"].count == 0
    # spent in full: refused before anything is built
    ledger.record_gateway_usage("worker", "crush", "qwen3:8b", tokens_out=50)
    reached = await chat(http, body, "worker")
    assert reached.status_code == 402 and reached.json()["error"]["code"] == "token_cap_reached"
    assert "worker is reached (1000 tokens of 1000 tokens)" in reached.json()["error"]["message"]
    # other clients are not capped by it
    assert (await chat(http, body, "ops")).status_code == 200 and crush_chats(fakes["crush"]) == 2
    token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
    spend = (await http.get("/spend", headers={"Authorization": f"Bearer {token}"})).json()["clients"]
    assert spend["worker"] == {
        "cap_usd": None, "spent_usd": 0.0, "cap_tokens": WORKER_CAP, "spent_tokens": 1000, "tokens_in": 805,
        "tokens_out": 195, "requests": 3, "providers": {
            "crush": {"cost_usd": 0.0, "tokens_in": 5, "tokens_out": 95, "requests": 2},
            "openai": {"cost_usd": 0.0, "tokens_in": 800, "tokens_out": 100, "requests": 1},
        },
    }  # fmt: skip
    assert (spend["agent"]["cap_usd"], spend["agent"]["cap_tokens"], spend["agent"]["spent_tokens"]) == (1.0, None, 0)
    assert spend["ops"]["cap_tokens"] is None and spend["ops"]["spent_tokens"] == 50


def test_cap_tokens_must_be_a_whole_number_for_validate_and_check(tmp_path, capsys):
    def worker(cap: Any) -> Settings:
        return settings_for(tmp_path, clients={"worker": {"key_file": str(tmp_path / "worker.key"), "cap_tokens": cap}})

    for bad in (-1, 1.5, True, "lots", "-3", float("inf"), [5]):
        with pytest.raises(ValidationError, match=r"cap_tokens must be a whole number of tokens") as refused:
            worker(bad)
        assert "gateway.clients.worker.cap_tokens" in str(refused.value)
    assert [worker(cap).gateway.clients["worker"].cap_tokens for cap in (0, 12, 12.0, " 7 ", None)] == [
        0, 12, 12, 7, None,
    ]  # fmt: skip
    assert not [problem for problem in check(worker(5000)) if "gateway" in problem]
    path = tmp_path / "config.yml"
    for cap in ("-5", "2.5"):
        path.write_text(
            f"port: 8600\npassword_file: {tmp_path / 'password'}\n"
            f"gateway: {{clients: {{worker: {{key_file: {tmp_path / 'worker.key'}, cap_tokens: {cap}}}}}}}\n"
        )
        assert main(["validate", "--config", str(path)]) == 2
        assert main(["check", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert "gateway.clients.worker.cap_tokens" in err
        assert "cap_tokens must be a whole number of tokens (input and output together), 0 or more" in err
        assert f"got {cap}" in err


def test_a_client_token_cap_over_all_providers(store):
    governance = Governance(Ledger(store.db))  # no prices, no caps: only the client's own
    ledger = governance.ledger
    ledger.record_gateway_usage("c", "p", "m", tokens_in=30)
    ledger.record_gateway_usage("c", "q", "m", tokens_out=30)  # another provider: counted as well
    ledger.record_gateway_usage("d", "p", "m", tokens_in=1000)  # another client: not
    assert governance.caps("p", client="c", client_cap=1.0, client_cap_tokens=100) == [
        Cap("client", "c", 1.0), Cap("client", "c", 100, "tokens"),
    ]  # fmt: skip
    assert governance.caps("p", client_cap_tokens=100) == []  # not a client's request
    assert governance.caps("p", client="c") == []
    held = governance.reserve("p", "m", request_of(10, 30), client="c", client_cap_tokens=100)  # 100: exactly
    assert held.amounts == {("client", "c", "tokens", None): 40.0} and held.request.max_output_tokens == 30
    assert len(ledger.open_reservations()) == 1  # free, but capped: written for a crash
    with pytest.raises(TokenCapReached) as refused:
        governance.reserve("p", "m", request_of(FRAME_TOKENS), client="c", client_cap_tokens=100)
    assert (refused.value.code, refused.value.status) == ("token_cap_reached", 402)
    assert refused.value.details() == {
        "scope": "client", "name": "c", "spent_tokens": 60.0, "cap_tokens": 100, "in_flight_tokens": 40.0,
        "request_tokens": 8.0,
    }  # fmt: skip
    assert str(refused.value) == (
        "the token cap for gateway client c would be exceeded: this request may use up to 8 tokens (its prompt and "
        "output limit) and 0 tokens is left (60 tokens spent, 40 tokens held by requests in flight of 100 tokens); "
        "nothing was sent; ask for fewer output tokens, or raise gateway.clients.c.cap_tokens in the configuration"
    )
    with pytest.raises(TokenCapReached, match=r"gateway client c is reached \(60 tokens of 100 tokens, 40 tokens held"):
        governance.check("p", "m", client="c", client_cap_tokens=100)
    governance.check("p", "m", client="c", client_cap_tokens=101)
    governance.check("p", "m", client="c")  # no cap given: none applies
    held.release()
    assert governance._held == {} and ledger.open_reservations() == []
    with pytest.raises(TokenCapReached, match="may use up to 41 tokens"):
        governance.reserve("p", "m", request_of(11, 30), client="c", client_cap_tokens=100)
    with pytest.raises(TokenCapReached, match="may use up to 4096 tokens"):
        governance.reserve("p", "m", Request("m", []), client="c", client_cap_tokens=59 + DEFAULT_OUTPUT_LIMIT)
    unlimited = governance.reserve("p", "m", Request("m", []), client="c", client_cap_tokens=60 + DEFAULT_OUTPUT_LIMIT)
    assert unlimited.request.max_output_tokens == DEFAULT_OUTPUT_LIMIT  # capped: its worst case must be known
    unlimited.release()
    ledger.record_gateway_usage("c", "p", "m", tokens_out=40)
    with pytest.raises(TokenCapReached, match="is reached") as reached:
        governance.reserve("p", "m", Request("m", [], max_output_tokens=0), client="c", client_cap_tokens=100)
    assert reached.value.request == 0.0 and reached.value.spent == 100.0
    free = governance.reserve("p", "m", Request("m", [], max_output_tokens=0), client="c")
    assert free.amounts == {} and ledger.open_reservations() == []


def test_messages_of_a_client_token_cap():
    assert str(TokenCapReached("client", "w", 7, 7, unit="tokens")) == (
        "the token cap for gateway client w is reached (7 tokens of 7 tokens); nothing was sent; "
        "raise gateway.clients.w.cap_tokens in the configuration"
    )
    assert str(TokenCapReached("client", "w", 7, 7, unit="tokens", provider="crush")).endswith(
        "raise token_caps.crush.per_client in the configuration"
    )
    assert str(SpendCapReached("thread", "t", 1, 1)).endswith("; raise the thread's cap_usd or start a new thread")


# -- streams that end early are billed ----------------------------------------------------------------------------


async def test_aborted_console_streams_are_billed_and_the_cap_fires(store):
    openai = SlowOpenAI(Reply("one two three four five six", input_tokens=5, output_tokens=45))
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o-mini", cap_usd=0.8)  # each may cost $0.498
    aborted = 0
    for _ in range(6):
        try:
            events = await console.stream(thread.id, "x" * 400, root=True)
        except SpendCapReached:
            break
        async for event in events:
            if event["type"] == "chunk":
                break  # the client went away after the first words
        await events.aclose()
        aborted += 1
    assert 0 < aborted < 6 and openai.count == aborted  # the cap fired on the aborted streams' spend
    partial = [m for m in store.messages(thread.id) if m.role == "assistant"]
    assert {m.status for m in partial} == {"partial"} and len(partial) == aborted
    # billed ≈len/4: 400 characters and the frame (104 tokens in), "one " (1 token out), at $0.001
    assert partial[0].tokens_in == 104 and partial[0].tokens_out == 1 and partial[0].cost_usd == pytest.approx(0.105)
    assert console.governance._held == {}


async def test_a_stream_cancelled_before_its_first_chunk_bills_the_prompt_and_leaves_the_history(store):
    openai = SlowOpenAI(REPLY)
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o-mini")
    events = await console.stream(thread.id, "x" * 40)

    async def read() -> None:
        async for _event in events:
            pass

    with anyio.move_on_after(DELAY / 2):  # the provider has not answered yet
        await read()
    assert openai.count == 1
    cut = store.messages(thread.id)[-1]
    assert (cut.role, cut.status, cut.content, cut.tokens_in) == ("assistant", "partial", "", 14)
    assert cut.cost_usd == pytest.approx(0.014)
    openai.replies = [Reply("again")]
    await console.post(thread.id, "hello?")
    assert [m["content"] for m in openai.bodies[-1]["messages"]] == ["x" * 40, "hello?"]  # the cut is not history


class FailingMidStream(SlowOpenAI):
    def stream_events(self, reply: Reply, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        events = super().stream_events(reply, body)[:2]
        return [*events, (None, {"error": {"message": "The server had an error", "type": "server_error"}})]


async def test_a_provider_failing_mid_stream_is_billed_for_what_arrived(store):
    console = make_console(store, {"openai": FailingMidStream(Reply("Hello there friend"))})
    thread = store.create_thread("openai", "gpt-4o-mini")
    events = [event async for event in await console.stream(thread.id, "y" * 80)]
    assert events[-1]["type"] == "error"
    reply = next(m for m in store.messages(thread.id) if m.role == "assistant")
    assert (reply.status, reply.content, reply.tokens_in, reply.tokens_out) == ("partial", "Hello ", 24, 1)
    assert reply.cost_usd == pytest.approx(0.025)


async def test_a_stream_without_usage_is_billed_by_estimate(store):
    class NoUsage(FakeOpenAI):
        def stream_events(self, reply, body):
            return [e for e in super().stream_events(reply, body) if e[1] == "[DONE]" or e[1].get("choices")]

    console = make_console(store, {"openai": NoUsage(Reply("abcdefgh"))})
    thread = store.create_thread("openai", "gpt-4o-mini")
    events = [event async for event in await console.stream(thread.id, "z" * 20)]
    assert events[-1]["usage"] == {"input_tokens": 9, "output_tokens": 2}
    assert events[-1]["cost_usd"] == pytest.approx(0.011)


# -- prices and configuration ------------------------------------------------------------------------------------


async def test_a_model_without_a_price_is_refused_unless_priced_explicitly(store):
    openai = FakeOpenAI(REPLY)
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o")
    with pytest.raises(ModelNotPriced, match="model gpt-4o of provider openai has no price"):
        await console.post(thread.id, "hi")
    assert openai.count == 0
    note = store.messages(thread.id)[-1]
    assert note.role == "note" and note.content.startswith("model_not_priced: ")
    free = make_console(store, {"openai": openai}, prices={"openai": {"gpt-4o-mini": (1, 1), "*": (0, 0)}})
    assert (await free.post(thread.id, "hi")).reply.cost_usd == 0
    own = make_console(store, {"openai": openai}, prices={"openai": {"gpt-4o": (0, 0)}})
    await own.post(thread.id, "hi")
    capped_only = make_console(store, {"openai": openai}, caps={"openai": 5.0}, prices={})
    with pytest.raises(ModelNotPriced):
        await capped_only.post(thread.id, "hi")
    assert openai.count == 2


def test_caps_without_prices_are_rejected_by_validate_and_check(tmp_path, capsys):
    with pytest.raises(ValidationError, match=r"caps need prices: openai capped in USD with no prices"):
        settings_for(tmp_path, prices={})
    with pytest.raises(ValidationError, match="token_caps names providers that are not configured: nope"):
        settings_for(tmp_path, token_caps={"nope": {"total": 1}})
    with pytest.raises(ValidationError, match="max_history_turns"):
        settings_for(tmp_path, gateway={"clients": {"a": {"key_file": "k", "max_history_turns": 0}}})
    path = tmp_path / "config.yml"
    path.write_text(
        "port: 8600\nproviders: {openai: {kind: openai}}\ncaps: {openai: 5}\n"
        f"password_file: {tmp_path / 'password'}\n"
    )
    assert main(["validate", "--config", str(path)]) == 2
    assert main(["check", "--config", str(path)]) == 2
    assert "caps need prices: openai" in capsys.readouterr().err
    # a client capped in USD that may use a cloud provider without prices: its spend there would be $0
    settings = settings_for(tmp_path, prices={"openai": {"*": [1, 1]}}, providers={
        "openai": {"kind": "openai"}, "groq": {"kind": "groq"}, "crush": {"kind": "crush", "base_url": "http://c:1"},
    })  # fmt: skip
    assert [p for p in check(settings) if "cap_usd" in p] == [
        "gateway: client agent has cap_usd but may use groq, which has no prices (its spend would count $0): "
        "add prices or leave it out of the client's providers"
    ]


# -- gateway client limits ----------------------------------------------------------------------------------------


async def test_gateway_client_limits_are_applied_to_what_the_provider_gets(tmp_path, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    openai = FakeOpenAI(REPLY)
    settings = settings_for(tmp_path)
    settings.gateway.clients["agent"].max_history_turns = 1
    console = build_console(settings, transports={"openai": openai.transport()})
    app = create_app(console, sessions(), gateway=build_gateway(settings, console))
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        for asked in (500, None, 10):
            body = {"model": "openai/gpt-4o-mini", "messages": history}
            response = await chat(http, body if asked is None else {**body, "max_tokens": asked})
            assert response.status_code == 200
        response = await chat(http, {"model": "openai/gpt-4o-mini", "messages": history}, "ops")
    assert [b["max_completion_tokens"] for b in openai.bodies[:3]] == [90, 90, 10]
    sent = openai.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"] and sent[1]["content"] == "q2"
    # ops: no limits of its own, no cap of its own, but the provider's cap: the default output limit is sent
    assert len(openai.bodies[3]["messages"]) == 6
    assert openai.bodies[3]["max_completion_tokens"] == DEFAULT_OUTPUT_LIMIT
    console.store.close()


# -- governance at its limits (what a mutant would change) ---------------------------------------------------------


@pytest.fixture
def governance(store):
    return Governance(
        Ledger(store.db), PriceTable({"p": {"*": (1_000_000, 0)}}), {"p": 100.0}, {"p": TokenCaps(100, 50, 40)}
    )


def request_of(tokens: int, out: int | None = 0) -> Request:
    """A request whose prompt bound is ``tokens`` (at least FRAME_TOKENS) and output limit ``out``."""
    return Request("m", [Message("user", "x" * (tokens - FRAME_TOKENS))], max_output_tokens=out)


def test_a_request_may_fill_a_cap_exactly_but_not_pass_it(store):
    governance = Governance(Ledger(store.db), PriceTable({"p": {"*": (100_000, 0)}}), {"p": 10.0})  # $0.1 a token
    thread = store.create_thread("p", "m", cap_usd=20.0)
    first = governance.reserve("p", "m", request_of(90), thread=thread)  # $9 of the provider's $10
    assert governance.held(governance.caps("p")[0]) == 9.0
    with pytest.raises(SpendCapReached) as refused:
        governance.reserve("p", "m", request_of(11), thread=thread)  # $1.1: $0.1 over
    assert (refused.value.scope, refused.value.in_flight, refused.value.request) == ("provider", 9.0, 1.1)
    exact = governance.reserve("p", "m", request_of(10), thread=thread)  # $1: the cap, exactly
    with pytest.raises(SpendCapReached, match=r"provider p is reached \(\$0.0000 of \$10.0000, \$10.0000 held"):
        governance.check("p", "m", thread=thread)  # reached: even a free request waits
    first.release()
    first.release()  # again: nothing more
    assert governance.held(governance.caps("p")[0]) == 1.0
    exact.release()
    governance.check("p", "m", thread=thread)
    assert governance._held == {}


def test_recorded_spend_at_the_cap_refuses_a_free_request(store, governance):
    thread = store.create_thread("p", "m", cap_usd=2.0)
    store.add_message(thread.id, None, "assistant", "x", provider="p", model="m", cost_usd=2.0)
    with pytest.raises(SpendCapReached) as refused:
        governance.reserve("p", "m", Request("m", [], max_output_tokens=0), thread=thread)
    assert (refused.value.scope, refused.value.spent, refused.value.request) == ("thread", 2.0, 0.0)
    assert "thread " + thread.id + " is reached ($2.0000 of $2.0000)" in str(refused.value)
    with pytest.raises(SpendCapReached, match="the thread's cap_usd"):
        governance.check("p", "m", thread=thread)
    governance.check("p", "m", thread=store.create_thread("p", "m", cap_usd=2.5))  # another thread: fine


def test_client_caps_in_usd_and_tokens(store, governance):
    governance.ledger.record_gateway_usage("c", "p", "m", tokens_in=30, cost_usd=1.0)
    with pytest.raises(SpendCapReached, match=r"gateway client c is reached \(\$1.0000 of \$1.0000\)") as refused:
        governance.check("p", "m", client="c", client_cap=1.0)
    assert "gateway.clients.c.cap_usd" in str(refused.value)
    held = governance.reserve("p", "m", request_of(10), client="c", client_cap=12.0)  # 40 tokens: exactly
    with pytest.raises(TokenCapReached) as tokens:
        governance.check("p", "m", client="c", client_cap=12.0)
    assert tokens.value.details() == {
        "scope": "client", "name": "c", "provider": "p", "spent_tokens": 30.0, "cap_tokens": 40,
        "in_flight_tokens": 10.0, "request_tokens": 0.0,
    }  # fmt: skip
    assert "token cap for gateway client c on provider p is reached (30 tokens of 40 tokens" in str(tokens.value)
    held.release()
    with pytest.raises(TokenCapReached, match=r"would be exceeded: this request may use up to 11 tokens"):
        governance.reserve("p", "m", request_of(11), client="c", client_cap=12.0)
    governance.check("p", "m", client="other", client_cap=None)


def test_token_caps_per_thread_and_in_all(store, governance):
    thread = store.create_thread("p", "m")
    with pytest.raises(TokenCapReached, match=r"token_caps\.p\.per_thread") as refused:
        governance.reserve("p", "m", request_of(20, 31), thread=thread)
    assert (refused.value.scope, refused.value.request, refused.value.cap) == ("thread", 51.0, 50)
    held = [governance.reserve("p", "m", request_of(10, 40), thread=store.create_thread("p", "m")) for _ in range(2)]
    with pytest.raises(TokenCapReached, match=r"provider p would be exceeded.*token_caps.p.total") as total:
        governance.reserve("p", "m", request_of(FRAME_TOKENS, 0), thread=store.create_thread("p", "m"))
    assert total.value.in_flight == 100.0 and total.value.details()["cap_tokens"] == 100
    del held
    gc.collect()  # dropped without release: released when collected
    assert governance._held == {}


def test_a_capped_request_without_an_output_limit_gets_the_default(governance):
    governance.token_caps.clear()
    reservation = governance.reserve("p", "m", Request("m", [], max_output_tokens=None))
    assert reservation.request.max_output_tokens == DEFAULT_OUTPUT_LIMIT
    assert reservation.amounts == {("provider", "p", "usd", None): 0.0}
    free = Governance(governance.ledger)  # no caps at all: nothing held, the request as it was
    request = Request("m", [Message("user", "hi")])
    unheld = free.reserve("crush", "m", request)
    assert unheld.request is request and unheld.amounts == {} and free._held == {}


def test_prices_and_their_refusal(store):
    table = PriceTable({"a": {"m": {"input": 2, "output": 4}}, "b": {"*": (1, 1)}})
    governance = Governance(Ledger(store.db), table, {"c": 1.0})
    assert governance.price("a", "m") == table.price("a", "m")
    assert governance.price("b", "anything") is not None and governance.price("local", "m") is None
    for provider in ("a", "c"):
        with pytest.raises(ModelNotPriced) as refused:
            governance.price(provider, "x")
        assert refused.value.details() == {"provider": provider, "model": "x"}
        assert (refused.value.status, refused.value.code) == (422, "model_not_priced")
    assert SpendCapReached("thread", "t", 1, 1).status == 402
    assert table.price("a", "m") == Price(2, 4)
    with pytest.raises(ModelNotPriced):
        governance.check("a", "x")  # refused before the request is even built


def test_caps_on_a_provider_without_prices_count_nothing_in_usd_and_tokens_per_provider(store):
    governance = Governance(Ledger(store.db), token_caps={"p": TokenCaps(per_thread=50)})
    thread = store.create_thread("p", "m", cap_usd=0.5)
    store.add_message(thread.id, None, "assistant", "x", provider="q", model="m", tokens_in=45)  # another provider
    held = governance.reserve("p", "m", request_of(FRAME_TOKENS), thread=thread)  # free: $0 of the $0.5
    assert held.amounts == {("thread", thread.id, "usd", None): 0.0, ("thread", thread.id, "tokens", "p"): 8.0}
    held.release()
    governance.ledger.record_gateway_usage("c", "p", "m", cost_usd=1.0)
    reserved = governance.reserve("p", "m", Request("m", [], max_output_tokens=0), client="c", client_cap=3.0)
    reserved.amounts[("client", "c", "usd", None)] = 2.0  # what it holds, now: $1 spent + $2 held = the cap
    with pytest.raises(SpendCapReached, match="is reached"):
        governance.reserve("p", "m", Request("m", [], max_output_tokens=0), client="c", client_cap=3.0)


def test_prompt_bound_and_estimates():
    plain = Request("m", [Message("user", "héllo")])  # 6 bytes
    assert prompt_bound(plain) == 6 + FRAME_TOKENS
    call = Message("assistant", "", tool_calls=[ToolCall("1", "f", {"a": 1})])  # "f" + '{"a": 1}'
    assert prompt_bound(Request("m", [call])) == 1 + 8 + FRAME_TOKENS
    tool = ToolSpec("t", "d", {})
    spec = len('{"name": "t", "description": "d", "parameters": {}}')
    assert prompt_bound(Request("m", [], tools=[tool])) == TOOLS_TOKENS + spec
    assert estimate_usage(Request("m", [Message("user", "x" * 40)]), "y" * 9) == Usage(14, 2)
    given = Usage(3, 0)
    assert usage_or_estimate(given, plain, "") is given
    assert usage_or_estimate(Usage(0, 3), plain, "").output_tokens == 3
    assert usage_or_estimate(Usage(), plain, "abcd") == Usage(5, 1)
    assert usage_or_estimate(None, plain, "") == Usage(5, 0)


def test_messages_of_the_refusals():
    assert str(SpendCapReached("provider", "p", 1, 2, request=1.5)) == (
        "the spend cap for provider p would be exceeded: this request may use up to $1.5000 (its prompt and "
        "output limit at the model's price) and $1.0000 is left ($1.0000 spent of $2.0000); nothing was sent; "
        "ask for fewer output tokens, or raise caps.p in the configuration or choose another provider"
    )
    assert str(TokenCapReached("provider", "p", 5, 4, unit="tokens", in_flight=1, request=3)) == (
        "the token cap for provider p would be exceeded: this request may use up to 3 tokens (its prompt and "
        "output limit) and 0 tokens is left (5 tokens spent, 1 tokens held by requests in flight of 4 tokens); "
        "nothing was sent; ask for fewer output tokens, or raise token_caps.p.total in the configuration"
    )
    thread = TokenCapReached("thread", "t", 5, 5, unit="tokens", provider="p")
    assert str(thread) == (
        "the token cap for thread t on provider p is reached (5 tokens of 5 tokens); nothing was sent; "
        "raise token_caps.p.per_thread in the configuration or start a new thread"
    )
    assert SpendCapReached("client", "c", 1, 1).details() == {
        "scope": "client", "name": "c", "spent_usd": 1, "cap_usd": 1, "in_flight_usd": 0.0, "request_usd": 0.0,
    }  # fmt: skip


async def test_the_router_reserves_per_route_and_releases_an_outage(store):
    down, up = FakeOpenAI(), FakeOpenAI(REPLY)
    down.down = True
    governance = Governance(Ledger(store.db), PriceTable({"a": {"*": (1, 1)}, "b": {"*": (1, 1)}}), {"a": 1, "b": 1})
    router = Router({"a": adapter(down, "a"), "b": adapter(up, "b")}, governance)
    thread = store.create_thread("a", "m", fallback_provider="b")
    hold = Hold()
    route, _ = await router.complete(thread, Request("m", [Message("user", "hi")], max_output_tokens=5), hold)
    assert route == Route("b", "m") and hold.route == route and hold.sent
    # "hi" and its frame, 10 tokens, and 5 out, at $1 per 1M
    assert list(governance._held.values()) == [{("provider", "b", "usd", None): pytest.approx(15e-6)}]
    hold.release()
    assert governance._held == {} and hold.route is None
    await router.complete(thread, Request("m", [Message("user", "hi")]))  # no hold: released on return
    assert governance._held == {}
    with pytest.raises(ProviderError):
        async for _ in router.stream(store.create_thread("a", "m"), Request("m", [Message("user", "hi")])):
            pass
    assert governance._held == {}


def test_history_trimming_at_its_limits():
    system = Message("system", "s" * 36)  # 13 tokens
    turns = [[Message("user", "u" * 36), Message("assistant", "a" * 36)] for _ in range(3)]  # 26 tokens each
    history = [system] + [m for turn in turns for m in turn]
    assert trim_history(history, max_turns=3) == history == trim_history(history)
    assert trim_history(history, max_turns=2) == [system, *history[3:]]
    assert trim_history(history, budget_tokens=13 + 78) == history  # exactly fits
    assert trim_history(history, budget_tokens=13 + 77) == [system, *history[3:]]  # one token short
    assert trim_history(history, budget_tokens=13 + 52) == [system, *history[3:]]
    assert trim_history(history, max_turns=0) == [system, *history[5:]]  # the newest turn always goes
    assert trim_history([Message("assistant", "a"), Message("user", "u")], max_turns=1) == [Message("user", "u")]
    assert trim_history([Message("assistant", "a"), Message("tool", "t")]) == [
        Message("assistant", "a"),
        Message("tool", "t"),
    ]


def test_the_role_renders_client_limits_and_token_caps():
    import yaml

    from tests.test_wiring import claw

    clients = {
        "agent": {"cap_usd": 1, "cap_tokens": 20000, "providers": ["crush"], "max_output_tokens": 512,
                  "max_history_turns": 8},
    }  # fmt: skip
    rendered = claw().template(
        "threadweaver", "config.yml.j2", threadweaver_gateway_clients=clients,
        threadweaver_token_caps={"crush": {"total": 1000000, "per_client": 50000}},
    )  # fmt: skip
    settings = Settings.model_validate(yaml.safe_load(rendered))
    agent = settings.gateway.clients["agent"]
    assert (agent.max_output_tokens, agent.max_history_turns, agent.cap_tokens) == (512, 8, 20000)
    assert settings.token_caps["crush"].caps() == TokenCaps(total=1000000, per_client=50000)
