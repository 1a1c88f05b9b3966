"""Issue #17: hooks that block or hang cannot stall the server, filtered text is the only text stored or shown
(streams, provider errors, a kill -9 mid-stream, the gateway), login throttling, the Origin check, the body
limit, /healthz without data, no query strings in the access log, and precise 4xx in the documented shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from claw.threadweaver.__main__ import build_console, build_gateway
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.guards import NoQuery
from claw.threadweaver.store import ThreadStore
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.doubles.http import closed_port_url, running
from tests.doubles.providers import FakeOpenAI, Reply, sse
from tests.threadweaver import server_process
from tests.threadweaver.console_login import PASSWORD, sessions

KEY = "cd" * 32
SECRET = "PLUGH"
HIDDEN = "[hidden]"
AGENT_KEY = "sk-tw-agent-0123456789abcdef"
STORY = f"once upon a time the word {SECRET} was said " + " ".join(f"w{n}" for n in range(60))
HIDE = {
    "on_chunk": f"def on_chunk(context):\n    return context.chunk.replace({SECRET!r}, {HIDDEN!r})\n",
    "post_receive": f"def post_receive(context):\n    return context.text.replace({SECRET!r}, {HIDDEN!r})\n",
}


class PacedOpenAI(FakeOpenAI):
    """The fake OpenAI with its stream sent event by event, ``delay`` apart; ``break_after`` events, the
    connection drops (a provider failing mid-stream)."""

    def __init__(self, *replies: Reply, delay: float = 0.01, break_after: int | None = None) -> None:
        super().__init__(*replies)
        self.delay = delay
        self.break_after = break_after

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        blocks = [sse([event]) for event in self.stream_events(reply, body)]

        async def paced() -> Any:
            for n, block in enumerate(blocks):
                if self.break_after is not None and n == self.break_after:
                    raise httpx.ReadError("connection reset by peer")
                await asyncio.sleep(self.delay)
                yield block

        return httpx.Response(200, content=paced(), headers={"content-type": "text/event-stream"})


def settings_for(tmp_path: Path, hooks: dict[str, str] | None = None, **extra: Any) -> Settings:
    hooks_dir = None
    if hooks:
        hooks_dir = tmp_path / "hooks"
        hooks_dir.mkdir()
        for name, source in hooks.items():
            (hooks_dir / f"{name}.py").write_text(source)
    (tmp_path / "agent.key").write_text(AGENT_KEY)
    return Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "hooks_dir": str(hooks_dir) if hooks_dir else None,
            "providers": {"openai": {"kind": "openai", "base_url": "https://openai.test/v1"}},
            "gateway": {"clients": {"agent": {"key_file": str(tmp_path / "agent.key")}}},
            **extra,
        }
    )


def make_app(tmp_path: Path, fake: FakeOpenAI, hooks: dict[str, str] | None = None, **extra: Any) -> Any:
    settings = settings_for(tmp_path, hooks, **extra)
    console = build_console(settings, transports={"openai": fake.transport()})
    app = create_app(
        console, sessions(), gateway=build_gateway(settings, console), max_body_bytes=settings.max_body_bytes
    )
    return app, console


def login(http: httpx.Client | httpx.AsyncClient) -> Any:
    return http.post("/login", json={"password": PASSWORD})


@pytest.fixture(autouse=True)
def store_key(monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", KEY)


# -- hooks that block or hang ------------------------------------------------------------------------------------

SLOW_HOOKS = {
    "async_blocking": "import time\nasync def pre_send(context):\n    time.sleep(4)\n",
    "async_hanging": "import asyncio\nasync def pre_send(context):\n    await asyncio.sleep(3600)\n",
    "sync_blocking": (
        "import time\ndef post_receive(context):\n"
        "    if context.messages[-1].content == 'slow':\n        time.sleep(4)\n    return context.text\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(SLOW_HOOKS))
def test_a_hook_that_blocks_or_hangs_neither_stalls_the_server_nor_keeps_its_request(tmp_path, kind):
    with (
        running(paced_provider(0.001)) as provider_url,
        served(tmp_path, provider_url, {kind: SLOW_HOOKS[kind]}, hook_timeout_s=1) as (url, _server),
    ):
        with httpx.Client(base_url=url, timeout=10) as http:
            http.headers["Authorization"] = f"Bearer {login(http).json()['token']}"
            thread = http.post("/threads", json={"provider": "openai", "model": "m"}).json()
            # Before the clock starts: the server's store connections (each derives the key), several side by side.
            warm = [threading.Thread(target=http.get, args=("/threads",)) for _ in range(6)]
            for worker in warm:
                worker.start()
            for worker in warm:
                worker.join()
            if kind == "sync_blocking":  # and the provider's first request, with the hook quick
                assert http.post(f"/threads/{thread['id']}/messages", json={"content": "hi"}).status_code == 200
        answer: dict[str, Any] = {}

        def post() -> None:
            started = time.monotonic()
            try:
                with httpx.Client(base_url=url, timeout=10, headers=http.headers) as poster_http:
                    answer["response"] = poster_http.post(f"/threads/{thread['id']}/messages", json={"content": "slow"})
            except httpx.TimeoutException as err:
                answer["response"] = err
            answer["took"] = time.monotonic() - started

        latencies = []
        with httpx.Client(base_url=url, timeout=10) as probe:
            probe.get("/healthz")  # the connection, before the clock starts
            poster = threading.Thread(target=post)
            poster.start()
            while poster.is_alive():
                started = time.perf_counter()
                probe.get("/healthz")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)
            poster.join()
    response = answer["response"]
    assert isinstance(response, httpx.Response), f"the request never ended: {response!r}"
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "hook_timeout"
    assert "did not return within 1 s" in response.json()["error"]["message"]
    assert answer["took"] < 3
    # A hook on the event loop would hold every probe for its whole 4 s; one probe delayed by a busy host's scheduler
    # (206 ms once in CI, beside 38 of about 1 ms) is not that: the median is bounded tight, every probe under 1 s.
    latencies.sort()
    summary = f"/healthz while the hook ran: {[round(s * 1000, 1) for s in latencies]} ms"
    assert latencies[len(latencies) // 2] < 0.050, summary
    assert latencies[-1] < 1.0, summary


# -- filtered text only, everywhere ----------------------------------------------------------------------------


def texts(console: Any) -> list[str]:
    return [m.content for thread in console.store.threads() for m in console.store.messages(thread.id)]


@pytest.mark.anyio
@pytest.mark.parametrize("stage", sorted(HIDE))
async def test_what_streams_is_filtered_before_it_is_shown_or_stored(tmp_path, stage):
    app, console = make_app(tmp_path, PacedOpenAI(Reply(STORY)), {"hide": HIDE[stage]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        http.headers["Authorization"] = f"Bearer {(await login(http)).json()['token']}"
        thread = (await http.post("/threads", json={"provider": "openai", "model": "m"})).json()
        seen: list[str] = []
        streaming = asyncio.create_task(http.post(f"/threads/{thread['id']}/messages/stream", json={"content": "go"}))
        while not streaming.done():  # what GET /threads/{id} shows while the reply streams
            tree = (await http.get(f"/threads/{thread['id']}")).json()
            seen += [m["content"] for m in tree["messages"]]
            await asyncio.sleep(0.01)
        streamed = streaming.result().text
        seen += [m["content"] for m in (await http.get(f"/threads/{thread['id']}")).json()["messages"]]
    console.store.close()
    assert any(HIDDEN in text for text in seen) and HIDDEN in streamed
    assert not [text for text in seen if SECRET in text]
    assert SECRET not in streamed


@pytest.mark.anyio
@pytest.mark.parametrize("stage", sorted(HIDE))
async def test_a_reply_cut_short_by_the_provider_keeps_only_filtered_text(tmp_path, stage):
    fake = PacedOpenAI(Reply(STORY), break_after=20)
    app, console = make_app(tmp_path, fake, {"hide": HIDE[stage]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        http.headers["Authorization"] = f"Bearer {(await login(http)).json()['token']}"
        thread = (await http.post("/threads", json={"provider": "openai", "model": "m"})).json()
        streamed = (await http.post(f"/threads/{thread['id']}/messages/stream", json={"content": "go"})).text
        tree = (await http.get(f"/threads/{thread['id']}")).json()
    console.store.close()
    assert '"type": "error"' in streamed and SECRET not in streamed
    reply = next(m for m in tree["messages"] if m["role"] == "assistant")
    assert reply["status"] == "partial" and HIDDEN in reply["content"]
    assert not [m["content"] for m in tree["messages"] if SECRET in m["content"]]


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("stage", sorted(HIDE))
async def test_the_gateway_runs_the_same_hooks(tmp_path, stage, stream):
    fake = PacedOpenAI(Reply(STORY))
    app, console = make_app(tmp_path, fake, {"hide": HIDE[stage]})
    body = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "go"}], "stream": stream}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        response = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
    console.store.close()
    assert response.status_code == 200, response.text
    assert SECRET not in response.text and HIDDEN in response.text.replace("\\u", "")
    assert fake.count == 1


@pytest.mark.anyio
async def test_a_gateway_hook_that_blocks_is_403_in_openais_shape(tmp_path):
    block = "from claw.threadweaver.hooks import HookBlocked\ndef pre_send(context):\n    raise HookBlocked('no')\n"
    fake = FakeOpenAI(Reply("never"))
    app, console = make_app(tmp_path, fake, {"block": block})
    body = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "go"}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        response = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
    console.store.close()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "hook_blocked" and fake.count == 0


def paced_provider(delay: float) -> Starlette:
    """An OpenAI-compatible server on a socket, streaming STORY word by word, ``delay`` apart."""
    fake = FakeOpenAI(Reply(STORY))

    async def completions(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse(fake.json(Reply(STORY), body))

        async def paced() -> Any:
            for event in fake.stream_events(Reply(STORY), body):
                await asyncio.sleep(delay)
                yield sse([event])

        return StreamingResponse(paced(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextlib.contextmanager
def served(tmp_path: Path, provider_url: str, hooks: dict[str, str], **extra: Any) -> Iterator[tuple[str, Any]]:
    """``python -m claw.threadweaver`` (uvicorn, its own process) on a loopback port; yields its URL and process
    (stdout and stderr in one pipe)."""
    hooks_dir = tmp_path / "hooks"
    hooks_dir.mkdir()
    for name, source in hooks.items():
        (hooks_dir / f"{name}.py").write_text(source)
    (tmp_path / "password-hash").write_text(sessions().password_hash + "\n")
    url = closed_port_url()
    config = {
        "port": int(url.rsplit(":", 1)[1]),
        "password_file": str(tmp_path / "password-hash"),
        "hooks_dir": str(hooks_dir),
        "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
        "providers": {"openai": {"kind": "openai", "base_url": f"{provider_url}/v1"}},
        **extra,
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    with server_process.running(tmp_path / "config.yml", url, KEY) as server:
        yield url, server


@pytest.mark.parametrize("stage", sorted(HIDE))
def test_killed_mid_stream_the_store_holds_no_unfiltered_text_and_the_log_no_query(tmp_path, stage):
    with (
        running(paced_provider(0.05)) as provider_url,
        served(tmp_path, provider_url, {"hide": HIDE[stage]}) as (url, server),
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        http.headers["Authorization"] = f"Bearer {login(http).json()['token']}"
        assert http.get("/search", params={"q": "xyzzysearchterm"}).status_code == 200
        thread = http.post("/threads", json={"provider": "openai", "model": "m"}).json()
        path = f"/threads/{thread['id']}/messages/stream"
        with http.stream("POST", path, json={"content": "tell me"}) as response:
            assert response.status_code == 200
            if stage == "on_chunk":  # streamed: wait for the secret word's chunk and some more
                lines = response.iter_lines()
                while "w12 " not in next(lines):
                    pass
            else:  # held back: nothing streams before the end
                next(response.iter_lines())
                time.sleep(1.5)
            time.sleep(0.5)  # flushed to the partial row by now (every 8 chunks or 250 ms)
            maps = Path(f"/proc/{server.pid}/maps").read_text()
            loaded = "/uvloop/loop." in maps and "/httptools/parser/parser." in maps
            server.send_signal(signal.SIGKILL)
            server.wait(10)
    log = server.stdout.read() if server.stdout else ""
    assert "GET /search" in log and "xyzzysearchterm" not in log
    assert loaded, "ThreadWeaver must serve on uvloop and httptools (pinned in claw's dependencies)"
    with ThreadStore(tmp_path / "threads.db", KEY) as store:
        messages = store.messages(thread["id"])
    reply = next(m for m in messages if m.role == "assistant")
    assert reply.status == "partial"
    assert not [m.content for m in messages if SECRET in m.content], [m.content for m in messages]
    if stage == "on_chunk":  # streamed and stored chunk by chunk, filtered
        assert HIDDEN in reply.content, [(m.role, m.status, m.content) for m in messages]


def test_the_access_log_filter_drops_query_strings():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "h11_impl.py", 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/search?q=my+secret", "1.1", 200), None,
    )  # fmt: skip
    assert NoQuery().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /search HTTP/1.1" 200'


# -- login, origin, size, healthz, bad input --------------------------------------------------------------------


@pytest.fixture
async def http(tmp_path):
    fake = FakeOpenAI(Reply("hello"))
    app, console = make_app(tmp_path, fake)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as client:
        client.app = app
        client.fake = fake
        client.console = console
        token = (await login(client)).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    console.store.close()


@pytest.mark.anyio
async def test_logins_are_throttled_per_address_and_over_all(http):
    throttle = http.app.state.sessions.throttle
    now = [1000.0]
    throttle.clock = lambda: now[0]
    anonymous = httpx.AsyncClient(transport=http._transport, base_url="http://tw")
    statuses = [(await anonymous.post("/login", json={"password": "wrong"})).status_code for _ in range(30)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    refused = await anonymous.post("/login", json={"password": PASSWORD})  # even the right password waits
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "login_throttled"
    assert int(refused.headers["retry-after"]) >= 1
    now[0] += 3600
    assert (await anonymous.post("/login", json={"password": PASSWORD})).status_code == 200
    # From many addresses: past the global allowance, every address waits.
    for n in range(60):
        transport = httpx.ASGITransport(app=http.app, client=(f"10.0.{n // 250}.{n % 250}", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as elsewhere:
            await elsewhere.post("/login", json={"password": "wrong"})
    fresh = httpx.ASGITransport(app=http.app, client=("192.0.2.7", 5000))
    async with httpx.AsyncClient(transport=fresh, base_url="http://tw") as newcomer:
        assert (await newcomer.post("/login", json={"password": PASSWORD})).status_code == 429


@pytest.mark.anyio
async def test_state_changing_requests_from_a_foreign_origin_are_refused(http):
    new = {"provider": "openai", "model": "m"}
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = await http.post("/threads", json=new, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"
        assert (await http.post("/login", json={"password": PASSWORD}, headers=headers)).status_code == 403
    assert (await http.get("/threads")).json() == []
    assert (await http.get("/threads", headers={"Origin": "https://evil.example"})).status_code == 200  # a read
    assert (await http.post("/threads", json=new, headers={"Origin": "http://tw"})).status_code == 201
    assert (await http.post("/threads", json=new)).status_code == 201  # no Origin: not a browser
    login = await http.post("/login", json={"password": PASSWORD}, headers={"Origin": "http://tw"})
    assert "samesite=strict" in login.headers["set-cookie"].lower()


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_413_and_nothing_is_sent(http):
    thread = (await http.post("/threads", json={"provider": "openai", "model": "m"})).json()
    big = "x" * (3 * 1024 * 1024)
    response = await http.post(f"/threads/{thread['id']}/messages", json={"content": big})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"

    async def chunked() -> Any:
        for _ in range(3):
            yield json.dumps({"content": "y" * 1024 * 1024}).encode()

    response = await http.post(f"/threads/{thread['id']}/messages", content=chunked())
    assert response.status_code == 413
    body = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": big}]}
    response = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert response.json()["error"]["type"] == "invalid_request_error"  # OpenAI's shape under /v1
    assert http.fake.count == 0
    assert (await http.get(f"/threads/{thread['id']}")).json()["messages"] == []


@pytest.mark.anyio
async def test_healthz_tells_nothing_but_up(http):
    await http.post("/threads", json={"provider": "openai", "model": "m"})
    assert (await http.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.anyio
async def test_bad_input_is_a_precise_4xx_in_the_documented_shape(http):
    thread = (await http.post("/threads", json={"provider": "openai", "model": "m"})).json()
    other = (await http.post("/threads", json={"provider": "openai", "model": "m"})).json()
    elsewhere = (await http.post(f"/threads/{other['id']}/messages", json={"content": "hi"})).json()["user"]["id"]
    null_provider = await http.patch(f"/threads/{thread['id']}", json={"provider": None})
    assert null_provider.status_code == 422 and null_provider.json()["error"]["code"] == "invalid"
    huge = await http.post("/threads", json={"provider": "openai", "model": "m", "max_output_tokens": 10**20})
    assert huge.status_code == 422
    assert huge.json()["error"]["field"] == "body.max_output_tokens" and "detail" not in huge.json()
    foreign_parent = await http.post(
        f"/threads/{thread['id']}/messages", json={"content": "hi", "parent_id": elsewhere}
    )
    assert foreign_parent.status_code == 404 and foreign_parent.json()["error"]["code"] == "not_found"
    assert (await http.get(f"/threads/{thread['id']}")).json()["messages"] == []  # nothing stored
    missing = await http.post("/threads", json={"provider": "openai"})
    assert missing.status_code == 422
    assert missing.json()["error"] | {"errors": None} == {
        "code": "invalid",
        "message": "body.model: Field required",
        "field": "body.model",
        "errors": None,
    }
    broken = await http.post("/threads", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    unknown = await http.get("/no/such/route")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    wrong_method = await http.put("/threads")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
