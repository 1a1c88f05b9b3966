"""MCP tools for the models: real claw MCP servers (time: read-only tools; files: a destructive write) served over
streamable HTTP on free loopback ports, a scripted OpenAI-compatible fake as the model, the console's HTTP API."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from claw.mcp import time as time_server
from claw.mcp.files import build_server as files_server
from claw.mcp.sandbox import Sandbox
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import create_app
from claw.threadweaver.approvals import NOT_RUN
from claw.threadweaver.config import McpConfig, Settings
from claw.threadweaver.store import ThreadStore
from claw.threadweaver.tools import ServerConfig, ToolCatalogue
from mcp.server.mcpserver import MCPServer
from pydantic import ValidationError

from tests.doubles.providers import Fake, FakeAnthropic, FakeOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
KEY = "cd" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """An MCP server on a loopback port, in a thread with its own event loop (as `claw mcp serve` runs it)."""

    def __init__(self, server: MCPServer, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        config = uvicorn.Config(
            server.streamable_http_app(host="127.0.0.1"), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Servers:
    urls: dict[str, str]
    sandbox: Path
    base: Path


@pytest.fixture(scope="module")
def mcp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    base = tmp_path_factory.mktemp("mcp")
    sandbox = base / "sandbox"
    sandbox.mkdir()
    clock = time_server.Settings(database=base / "time.sqlite3", zone="UTC")
    running = {
        "time": Served(time_server.create(clock)),
        "files": Served(files_server(Sandbox(sandbox, 4096, 4096))),
    }
    yield Servers({name: served.url for name, served in running.items()}, sandbox, base)
    for served in running.values():
        served.stop()


@dataclass
class Chat:
    http: httpx.AsyncClient
    model: Fake
    console: Any

    async def thread(self, **options: Any) -> str:
        response = await self.http.post("/threads", json={"provider": "model", "model": "gpt-x", **options})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def say(self, thread_id: str, text: str = "hi") -> dict[str, Any]:
        response = await self.http.post(f"/threads/{thread_id}/messages", json={"content": text})
        assert response.status_code == 200, response.text
        return response.json()

    async def decide(self, thread_id: str, message_id: str, decisions: dict[str, Any], stream: bool = False):
        suffix = "/stream" if stream else ""
        return await self.http.post(
            f"/threads/{thread_id}/messages/{message_id}/approval{suffix}", json={"decisions": decisions}
        )

    def metric(self, server: str, tool: str, outcome: str) -> float:
        labels = {"server": server, "tool": tool, "outcome": outcome}
        return self.console.metrics.registry.get_sample_value("threadweaver_tool_calls_total", labels) or 0.0

    def tool_messages(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in body["messages"] if m["role"] == "tool"]


@pytest.fixture
async def chat(tmp_path, mcp_servers, monkeypatch) -> AsyncIterator[Callable[..., Any]]:
    """A factory: ``await chat(*replies, servers=..., **mcp_options)`` -> a logged-in client on a fresh console."""
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", KEY)
    monkeypatch.setenv("TW_TOOLS_KEY", "sk-test")
    stack = AsyncExitStack()

    async def make(
        *replies: Reply, servers: dict[str, Any] | None = None, fake: type[Fake] = FakeOpenAI, **mcp: Any
    ) -> Chat:
        model = fake(*replies)
        if servers is None:
            servers = {name: {"url": url} for name, url in mcp_servers.urls.items()}
        settings = Settings.model_validate(
            {
                "port": 8600,
                "store": {"path": str(tmp_path / f"threads-{len(stack._exit_callbacks)}.db"), "key_file": None},
                "providers": {
                    "model": {
                        "kind": fake.kind,
                        "base_url": f"https://{fake.kind}.test/v1",
                        "api_key_env": "TW_TOOLS_KEY",
                    }
                },
                "mcp": {"servers": servers, **mcp},
            }
        )
        console = build_console(settings, transports={"model": model.transport()})
        stack.callback(console.store.close)
        app = create_app(console, sessions())
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw")
        )
        http.headers["Authorization"] = (
            f"Bearer {(await http.post('/login', json={'password': PASSWORD})).json()['token']}"
        )
        return Chat(http, model, console)

    yield make
    await stack.aclose()


def call(name: str, arguments: dict[str, Any] | None = None, id: str = "call_1") -> dict[str, Any]:
    return {"id": id, "name": name, "arguments": arguments or {}}


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def sent_tool_results(body: dict[str, Any]) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


# -- the catalogue and its configuration ------------------------------------------------------------------------


async def test_tools_lists_every_server_with_the_approval_policy(chat):
    client = await chat()
    listed = (await client.http.get("/tools")).json()
    assert [(s["name"], s["available"], s["error"]) for s in listed["servers"]] == [
        ("time", True, None),
        ("files", True, None),
    ]
    tools = {t["name"]: t for t in listed["tools"]}
    assert tools["time__current_time"] == {
        "name": "time__current_time",
        "server": "time",
        "tool": "current_time",
        "description": tools["time__current_time"]["description"],
        "read_only": True,
        "destructive": False,
        "needs_approval": False,
    }
    assert "current date" in tools["time__current_time"]["description"]
    assert (tools["files__write_file"]["destructive"], tools["files__write_file"]["needs_approval"]) == (True, True)
    # Not read-only and not destructive: it still asks unless the configuration says otherwise.
    assert (tools["time__create_reminder"]["destructive"], tools["time__create_reminder"]["needs_approval"]) == (
        False,
        True,
    )


async def test_approval_overrides_and_non_destructive_auto_approval(mcp_servers):
    urls = mcp_servers.urls

    async def policy(catalogue: ToolCatalogue) -> dict[str, bool]:
        return {name: tool.needs_approval for name, tool in (await catalogue.listing()).tools.items()}

    relaxed = await policy(
        ToolCatalogue({n: ServerConfig(u) for n, u in urls.items()}, auto_approve_non_destructive=True)
    )
    assert relaxed["time__create_reminder"] is False and relaxed["time__cancel_reminder"] is True
    assert relaxed["files__write_file"] is True and relaxed["files__make_directory"] is False
    forced = await policy(
        ToolCatalogue({"time": ServerConfig(urls["time"], "always"), "files": ServerConfig(urls["files"], "never")})
    )
    assert forced["time__current_time"] is True and forced["files__delete_file"] is False


def test_config_validates_server_names_and_defaults():
    assert McpConfig().max_tool_rounds == 4 and McpConfig().auto_approve_non_destructive is False
    for bad in ("my__server", "9lives", "with-dash", ""):
        with pytest.raises(ValidationError, match="must be an identifier"):
            McpConfig.model_validate({"servers": {bad: {"url": "http://127.0.0.1:1/mcp"}}})
    with pytest.raises(ValidationError, match="approval"):
        McpConfig.model_validate({"servers": {"time": {"url": "http://x/mcp", "approval": "sometimes"}}})
    with pytest.raises(ValidationError, match="max_tool_rounds"):
        McpConfig.model_validate({"max_tool_rounds": -1})


# -- calls that run on their own ------------------------------------------------------------------------------


async def test_a_read_only_tool_runs_and_the_model_gets_its_result(chat):
    client = await chat(Reply(tool_calls=[call("time__current_time", {"zone": "UTC"})]), Reply("It is noon."))
    thread = await client.thread()
    body = await client.say(thread, "what time is it?")
    assert body["approval_required"] is None
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert body["user"]["id"] == body["messages"][0]["id"] and body["reply"]["content"] == "It is noon."
    asking, result = body["messages"][1], body["messages"][2]
    assert asking["tool_calls"] == [
        {"id": "call_1", "name": "time__current_time", "arguments": {"zone": "UTC"}, "approval": "auto"}
    ]
    assert (result["tool_call_id"], result["tool_name"], result["status"]) == (
        "call_1",
        "time__current_time",
        "complete",
    )
    assert json.loads(result["content"])["zone"] == "UTC"
    # The tools went with the first request; the second carried the result, under the call's id.
    first, second = client.model.bodies
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {"time__current_time", "files__write_file"} <= offered
    assert sent_tool_results(second) == {"call_1": result["content"]}
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "time__current_time"
    assert client.metric("time", "current_time", "ok") == 1
    # The chain is one path: user -> assistant -> tool -> assistant.
    tree = (await client.http.get(f"/threads/{thread}")).json()
    parents = [m["parent_id"] for m in tree["messages"]]
    assert parents == [None, *[m["id"] for m in tree["messages"][:-1]]]


async def test_the_tool_loop_speaks_anthropic_too(chat):
    calls = [call("time__current_time", id="toolu_01A"), call("time__format_duration", {"seconds": 90}, id="toolu_01B")]
    client = await chat(Reply(tool_calls=calls), Reply("Noon, and 1 min 30 s."), fake=FakeAnthropic)
    thread = await client.thread()
    body = await client.say(thread)
    assert body["reply"]["content"] == "Noon, and 1 min 30 s."
    # Both results in one user message of tool_result blocks, after the assistant's tool_use blocks.
    sent = client.model.bodies[1]
    assert {t["name"] for t in sent["tools"]} >= {"time__current_time", "time__format_duration"}
    results = sent["messages"][-1]["content"]
    assert [(b["type"], b["tool_use_id"]) for b in results] == [
        ("tool_result", "toolu_01A"),
        ("tool_result", "toolu_01B"),
    ]
    assert "1 min 30 s" in results[1]["content"]


async def test_a_thread_with_tools_off_offers_none_and_runs_none(chat):
    client = await chat(Reply(tool_calls=[call("time__current_time")]), Reply("never asked again"))
    thread = await client.thread(tools=False)
    assert (await client.http.get(f"/threads/{thread}")).json()["thread"]["tools"] is False
    body = await client.say(thread)
    assert "tools" not in client.model.bodies[0] and client.model.count == 1
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"] and body["approval_required"] is None
    assert body["reply"]["tool_calls"] == [{"id": "call_1", "name": "time__current_time", "arguments": {}}]
    # Switched on later, the next turn offers them.
    await client.http.patch(f"/threads/{thread}", json={"tools": True})
    await client.say(thread, "again")
    assert "tools" in client.model.bodies[1]


async def test_tools_default_to_off_without_mcp_servers(chat):
    client = await chat(Reply("plain"), servers={})
    thread = (await client.http.post("/threads", json={"provider": "model", "model": "m"})).json()
    assert thread["tools"] is False
    assert (await client.say(thread["id"]))["reply"]["content"] == "plain"
    assert (await client.http.get("/tools")).json() == {"servers": [], "tools": []}


async def test_an_unknown_tool_is_an_error_for_the_model_not_a_crash(chat):
    client = await chat(Reply(tool_calls=[call("weather__forecast", {"city": "Oslo"})]), Reply("Sorry, no weather."))
    thread = await client.thread()
    body = await client.say(thread)
    (result,) = client.tool_messages(body)
    assert result["status"] == "error" and result["content"].startswith("Error: unknown tool 'weather__forecast'")
    assert "time__current_time" in result["content"]  # the model learns what exists
    assert sent_tool_results(client.model.bodies[1]) == {"call_1": result["content"]}
    assert body["reply"]["content"] == "Sorry, no weather."
    assert client.metric("_unknown", "_unknown", "error") == 1


async def test_a_tool_error_is_flagged_and_passed_on(chat):
    client = await chat(Reply(tool_calls=[call("files__read_file", {"path": "../etc/passwd"})]), Reply("cannot"))
    thread = await client.thread()
    (result,) = client.tool_messages(await client.say(thread))
    assert result["status"] == "error" and result["content"].startswith("Error")
    assert client.metric("files", "read_file", "error") == 1 and client.metric("files", "read_file", "ok") == 0


async def test_max_tool_rounds_stops_a_model_that_keeps_calling(chat):
    looping = [Reply(tool_calls=[call("time__current_time", id=f"call_{n}")]) for n in range(6)]
    client = await chat(*looping, max_tool_rounds=2)
    thread = await client.thread()
    body = await client.say(thread)
    # Two rounds of automatic calls, then the third call waits for the user even though it is read-only.
    assert client.model.count == 3
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert body["approval_required"] == {
        "type": "approval_required",
        "message_id": body["reply"]["id"],
        "calls": [{"id": "call_2", "name": "time__current_time", "arguments": {}}],
    }
    assert body["reply"]["tool_calls"][0]["approval"] == "pending"
    assert client.metric("time", "current_time", "ok") == 2


# -- calls that wait for the user -----------------------------------------------------------------------------


async def test_a_destructive_tool_waits_until_approved_then_the_turn_goes_on(chat, mcp_servers):
    target = mcp_servers.sandbox / "approved.txt"
    write = call("files__write_file", {"path": "approved.txt", "content": "hello"})
    client = await chat(Reply("Let me write it.", tool_calls=[write]), Reply("Written."))
    thread = await client.thread()
    body = await client.say(thread, "write hello")
    waiting = body["reply"]
    assert body["approval_required"] == {
        "type": "approval_required",
        "message_id": waiting["id"],
        "calls": [{"id": "call_1", "name": "files__write_file", "arguments": write["arguments"]}],
    }
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert waiting["tool_calls"][0]["approval"] == "pending" and waiting["content"] == "Let me write it."
    assert not target.exists() and client.model.count == 1

    approved = await client.decide(thread, waiting["id"], {"call_1": True})
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert result["approval_required"] is None
    assert [m["role"] for m in result["messages"]] == ["tool", "assistant"]
    assert result["messages"][0]["parent_id"] == waiting["id"] and result["messages"][1]["content"] == "Written."
    assert target.read_text() == "hello"
    assert "call_1" in sent_tool_results(client.model.bodies[1])
    stored = (await client.http.get(f"/threads/{thread}")).json()["messages"]
    assert next(m for m in stored if m["id"] == waiting["id"])["tool_calls"][0]["approval"] == "approved"
    assert client.metric("files", "write_file", "ok") == 1
    # Decided once: a second decision finds nothing pending, and nothing runs again.
    again = await client.decide(thread, waiting["id"], {"call_1": True})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_pending"
    assert client.metric("files", "write_file", "ok") == 1


async def test_a_denied_call_is_not_run_and_the_model_is_told(chat, mcp_servers):
    target = mcp_servers.sandbox / "denied.txt"
    client = await chat(
        Reply(tool_calls=[call("files__write_file", {"path": "denied.txt", "content": "x"})]), Reply("Alright.")
    )
    thread = await client.thread()
    waiting = (await client.say(thread))["reply"]
    result = (await client.decide(thread, waiting["id"], {"call_1": False})).json()
    denial = result["messages"][0]
    assert (denial["role"], denial["content"], denial["status"]) == ("tool", "denied by the user", "error")
    assert not target.exists()
    assert sent_tool_results(client.model.bodies[1]) == {"call_1": "denied by the user"}
    assert result["messages"][-1]["content"] == "Alright."
    stored = (await client.http.get(f"/threads/{thread}")).json()["messages"]
    assert next(m for m in stored if m["id"] == waiting["id"])["tool_calls"][0]["approval"] == "denied"
    assert client.metric("files", "write_file", "denied") == 1 and client.metric("files", "write_file", "ok") == 0


async def test_a_reply_mixing_automatic_and_waiting_calls(chat, mcp_servers):
    calls = [
        call("time__current_time", {"zone": "UTC"}, id="call_a"),
        call("files__write_file", {"path": "mixed.txt", "content": "m"}, id="call_b"),
    ]
    client = await chat(Reply(tool_calls=calls), Reply("Both done."))
    thread = await client.thread()
    body = await client.say(thread)
    assert [c["approval"] for c in body["reply"]["tool_calls"]] == ["auto", "pending"]
    (auto_result,) = client.tool_messages(body)  # the read-only one ran before the turn stopped
    assert auto_result["tool_call_id"] == "call_a" and body["reply"]["role"] == "assistant"
    assert [c["id"] for c in body["approval_required"]["calls"]] == ["call_b"]
    result = (await client.decide(thread, body["reply"]["id"], {"call_b": True})).json()
    # The approved result is chained after the automatic one, and the model gets both.
    assert result["messages"][0]["parent_id"] == auto_result["id"]
    assert set(sent_tool_results(client.model.bodies[1])) == {"call_a", "call_b"}
    assert (mcp_servers.sandbox / "mixed.txt").read_text() == "m"


async def test_writing_on_instead_of_deciding_tells_the_model_the_call_did_not_run(chat):
    client = await chat(Reply(tool_calls=[call("files__delete_file", {"path": "victim.txt"})]), Reply("ok"))
    thread = await client.thread()
    await client.say(thread, "delete it")
    await client.say(thread, "no, never mind")
    assert sent_tool_results(client.model.bodies[1]) == {"call_1": NOT_RUN}
    assert client.model.bodies[1]["messages"][-1] == {"role": "user", "content": "no, never mind"}


async def test_the_approval_endpoint_refuses_precisely(chat):
    client = await chat(Reply(tool_calls=[call("files__write_file", {"path": "e.txt", "content": "e"})]), Reply("done"))
    thread = await client.thread()
    body = await client.say(thread)
    waiting = body["reply"]["id"]
    unknown = await client.decide(thread, "nope", {"call_1": True})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    other = await client.thread()
    assert (await client.decide(other, waiting, {"call_1": True})).status_code == 404
    assert (await client.decide("no-thread", waiting, {"call_1": True})).status_code == 404
    user = body["messages"][0]["id"]
    not_pending = await client.decide(thread, user, {"call_1": True})
    assert not_pending.status_code == 409 and not_pending.json()["error"]["code"] == "not_pending"
    for decisions in ({}, {"call_1": True, "call_9": False}, {"call_9": True}):
        refused = await client.decide(thread, waiting, decisions)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_decisions", decisions
    assert (await client.decide(thread, waiting, {"call_1": "yes"})).status_code == 422
    assert (await client.decide(thread, waiting, {"call_1": True}, stream=True)).status_code == 200
    assert (await client.decide(thread, waiting, {"call_1": True}, stream=True)).status_code == 409


# -- streaming ----------------------------------------------------------------------------------------------


async def test_sse_events_of_a_turn_with_an_automatic_call(chat):
    client = await chat(Reply(tool_calls=[call("time__day_of_week", {"date": "2025-06-02"})]), Reply("It is Monday."))
    thread = await client.thread()
    events = events_of(await client.http.post(f"/threads/{thread}/messages/stream", json={"content": "day?"}))
    assert [e["type"] for e in events] == ["user", "tool_call", "tool_result", "chunk", "chunk", "chunk", "done"]
    tool_call, tool_result, done = events[1], events[2], events[-1]
    assert {k: tool_call[k] for k in ("id", "name", "arguments", "needs_approval")} == {
        "id": "call_1",
        "name": "time__day_of_week",
        "arguments": {"date": "2025-06-02"},
        "needs_approval": False,
    }
    assert tool_result["id"] == "call_1" and tool_result["is_error"] is False
    assert json.loads(tool_result["content"])["day_of_week"] == "Monday"
    assert "".join(e["text"] for e in events if e["type"] == "chunk") == "It is Monday."
    stored = (await client.http.get(f"/threads/{thread}")).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert tool_call["message_id"] == stored[1]["id"] and tool_result["message_id"] == stored[2]["id"]
    assert done["message_id"] == stored[3]["id"] and stored[3]["status"] == "complete"
    assert sent_tool_results(client.model.bodies[1]) == {"call_1": tool_result["content"]}


async def test_sse_events_of_an_approval_and_its_continuation(chat, mcp_servers):
    write = call("files__write_file", {"path": "streamed.txt", "content": "s"})
    client = await chat(Reply("Writing.", tool_calls=[write]), Reply("Done now."))
    thread = await client.thread()
    events = events_of(await client.http.post(f"/threads/{thread}/messages/stream", json={"content": "w"}))
    assert [e["type"] for e in events] == ["user", "chunk", "tool_call", "approval_required"]
    assert events[2]["needs_approval"] is True
    waiting = events[-1]
    assert waiting["message_id"] == events[2]["message_id"]
    assert waiting["calls"] == [{"id": "call_1", "name": "files__write_file", "arguments": write["arguments"]}]
    assert not (mcp_servers.sandbox / "streamed.txt").exists()
    more = events_of(await client.decide(thread, waiting["message_id"], {"call_1": True}, stream=True))
    assert [e["type"] for e in more] == ["tool_result", "chunk", "chunk", "done"]
    assert more[0]["is_error"] is False and (mcp_servers.sandbox / "streamed.txt").read_text() == "s"
    final = (await client.http.get(f"/threads/{thread}")).json()["messages"][-1]
    assert more[-1]["message_id"] == final["id"] and final["content"] == "Done now."


# -- servers that are down ----------------------------------------------------------------------------------


async def test_a_server_that_is_down_does_not_break_chatting_and_is_retried(chat, mcp_servers):
    port = free_port()
    servers = {"time": {"url": mcp_servers.urls["time"]}, "later": {"url": f"http://127.0.0.1:{port}/mcp"}}
    client = await chat(Reply(tool_calls=[call("later__current_time")]), Reply("Still here."), servers=servers)
    listed = (await client.http.get("/tools")).json()
    down = next(s for s in listed["servers"] if s["name"] == "later")
    assert (
        down["available"] is False
        and f"MCP server later at http://127.0.0.1:{port}/mcp is unavailable" in (down["error"])
    )
    assert all(t["server"] == "time" for t in listed["tools"]) and listed["tools"]
    thread = await client.thread()
    body = await client.say(thread)
    (result,) = client.tool_messages(body)
    assert result["status"] == "error" and "MCP server later" in result["content"]
    assert body["reply"]["content"] == "Still here."
    assert client.metric("later", "_unknown", "unavailable") == 1
    # The server comes up: the next listing finds it (a failure is never cached).
    database = mcp_servers.base / "later.sqlite3"
    served = Served(time_server.create(time_server.Settings(database=database, zone="UTC")), port)
    try:
        listed = (await client.http.get("/tools")).json()
        assert next(s for s in listed["servers"] if s["name"] == "later")["available"] is True
        assert "later__current_time" in {t["name"] for t in listed["tools"]}
    finally:
        served.stop()


async def test_a_server_going_down_between_listing_and_calling(mcp_servers, tmp_path):
    served = Served(files_server(Sandbox(mcp_servers.sandbox, 4096, 4096)))
    catalogue = ToolCatalogue({"files": ServerConfig(served.url)}, timeout_s=5)
    listing = await catalogue.listing()
    served.stop()
    outcome = await catalogue.call(listing, "files__sandbox_path", {})
    assert (outcome.outcome, outcome.server, outcome.tool) == ("unavailable", "files", "sandbox_path")
    assert outcome.is_error and outcome.content.startswith("Error: MCP server files is unavailable")


async def test_a_server_that_never_answers_costs_a_turn_at_most_the_listing_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/mcp"
        catalogue = ToolCatalogue({"hung": ServerConfig(url)}, list_timeout_s=0.5)
        started = time.monotonic()
        listing = await catalogue.listing()
        assert time.monotonic() - started < 3
    assert listing.tools == {} and listing.servers[0].available is False
    assert listing.servers[0].error == f"MCP server hung at {url} is unavailable: no answer in time"


# -- the store -----------------------------------------------------------------------------------------------


def test_a_store_from_before_the_tools_flag_gains_it(tmp_path):
    path = tmp_path / "old.db"
    with ThreadStore(path, KEY) as store:
        thread = store.create_thread("openai", "m", tools=False)
        store.db.execute("ALTER TABLE threads DROP COLUMN tools")
    with ThreadStore(path, KEY) as store:
        assert store.thread(thread.id).tools is True  # threads made before tools existed may use them
        assert store.update_thread(thread.id, tools=False).tools is False


def test_only_the_decisions_of_tool_calls_may_change(tmp_path):
    with ThreadStore(tmp_path / "t.db", KEY) as store:
        thread = store.create_thread("openai", "m")
        message = store.add_message(thread.id, None, "assistant", "", tool_calls=[{"id": "a", "name": "x__y"}])
        updated = store.set_tool_calls(message.id, [{"id": "a", "name": "x__y", "approval": "denied"}])
        assert updated.tool_calls[0]["approval"] == "denied" and updated.content == message.content
        with pytest.raises(Exception, match="other tool calls"):
            store.set_tool_calls(message.id, [{"id": "b", "name": "x__y"}])
