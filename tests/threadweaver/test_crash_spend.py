"""kill -9 while a paid request is in flight (issue #17: caps hold, and "no crash loses or leaks a stored
message"): the real ThreadWeaver process, a provider streaming slowly on a socket, the process killed mid-stream
and started again. The request's spend is not lost: at start it is billed for the partial reply stored for it
(or, for the gateway, which stores no text, its reserved worst case), more than nothing and within the cap, and
the cap counts it afterwards."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from claw.threadweaver.store import ThreadStore

from tests.doubles.http import closed_port_url, running
from tests.doubles.providers import PacedOpenAI, Reply
from tests.threadweaver import server_process
from tests.threadweaver.console_login import PASSWORD, sessions

KEY = "ef" * 32
AGENT_KEY = "sk-tw-agent-crash-0123456789abcdef"
STORY = " ".join(f"w{n}" for n in range(400))
PRICE = 1000.0  # USD per 1M tokens, in and out: $0.001 a token
CAP = 0.5  # the gateway client's
THREAD_CAP = 1.0  # room for the first request's worst case and, later, a continuation's
OUTPUT_LIMIT = 300  # the thread's and the client's max_output_tokens: a worst case of ~$0.33


@contextlib.contextmanager
def threadweaver(
    tmp_path: Path, provider_url: str, agent: dict[str, Any] | None = None, prices: dict[str, Any] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m claw.threadweaver`` on a loopback port (its output in one pipe); killed with -9 at the end if
    still running. ``agent``: the gateway client's caps and limits (else ``cap_usd`` :data:`CAP`); ``prices``: the
    provider's (else :data:`PRICE` for any model)."""
    (tmp_path / "password-hash").write_text(sessions().password_hash + "\n")
    (tmp_path / "agent.key").write_text(AGENT_KEY)
    url = closed_port_url()
    config = {
        "port": int(url.rsplit(":", 1)[1]),
        "password_file": str(tmp_path / "password-hash"),
        "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
        "providers": {"openai": {"kind": "openai", "base_url": f"{provider_url}/v1"}},
        "prices": {"openai": {"*": [PRICE, PRICE]}} if prices is None else prices,
        "gateway": {
            "clients": {
                "agent": {
                    "key_file": str(tmp_path / "agent.key"),
                    **({"cap_usd": CAP, "max_output_tokens": OUTPUT_LIMIT} if agent is None else agent),
                }
            }
        },
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    with server_process.running(tmp_path / "config.yml", url, KEY) as server:
        yield url, server


@contextlib.contextmanager
def logged_in(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as http:
        http.headers["Authorization"] = f"Bearer {http.post('/login', json={'password': PASSWORD}).json()['token']}"
        yield http


def kill_mid_stream(server: subprocess.Popen, response: httpx.Response, words: int) -> str:
    """Read the stream until ``words`` words arrived, give the reply's writer time to store them, kill -9 (the
    client still connected: nothing was cut short before the kill)."""
    seen = ""
    lines = response.iter_lines()  # kept until the kill: a dropped iterator would close the connection
    for line in lines:
        seen += line
        if len(re.findall(r"\bw\d+ ", seen)) >= words:
            break
    time.sleep(0.6)  # stored by now: the writer flushes every 250 ms
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    assert server.returncode == -signal.SIGKILL
    return seen


def test_killed_mid_stream_a_thread_request_is_billed_at_restart_and_the_cap_holds(tmp_path):
    provider = PacedOpenAI(Reply(STORY, input_tokens=9999, output_tokens=9999), delay=0.03)
    with running(provider.app()) as provider_url:
        with threadweaver(tmp_path, provider_url) as (url, server), logged_in(url) as http:
            thread = http.post(
                "/threads",
                json={"provider": "openai", "model": "gpt-x", "cap_usd": THREAD_CAP, "max_output_tokens": OUTPUT_LIMIT},
            ).json()
            path = f"/threads/{thread['id']}/messages/stream"
            with http.stream("POST", path, json={"content": "tell me a long story"}) as response:
                assert response.status_code == 200
                kill_mid_stream(server, response, 30)
        assert provider.count == 1
        # The file as the crash left it: the user's message, the partial reply, nothing billed yet.
        with ThreadStore(tmp_path / "threads.db", KEY) as store:
            user, reply = store.messages(thread["id"])
            assert (user.content, reply.status, reply.cost_usd) == ("tell me a long story", "partial", 0.0)
            assert reply.content.startswith("w0 w1 w2") and len(reply.content) < len(STORY)

        with threadweaver(tmp_path, provider_url) as (url, server), logged_in(url) as http:
            messages = http.get(f"/threads/{thread['id']}").json()["messages"]
            assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "partial")]
            reply = messages[1]
            # Billed for what was stored: the prompt (≈len/4 + 4) and the partial text (≈len/4).
            assert (reply["tokens_in"], reply["tokens_out"]) == (9, len(reply["content"]) // 4)
            spent = http.get("/spend").json()["threads"][thread["id"]]["cost_usd"]
            assert spent == pytest.approx((reply["tokens_in"] + reply["tokens_out"]) * PRICE / 1e6)
            assert 0 < spent <= THREAD_CAP
            # The kept partial reply can be continued (within the cap).
            provider.replies = [Reply(" the end", input_tokens=10, output_tokens=2)]
            continued = http.post(f"/threads/{thread['id']}/messages/{reply['id']}/continue")
            assert continued.status_code == 200, continued.text
            assert continued.json()["reply"]["content"] == reply["content"] + " the end"
            total = http.get("/spend").json()["threads"][thread["id"]]["cost_usd"]
            assert total == pytest.approx(spent + 12 * PRICE / 1e6) and total <= THREAD_CAP
            assert provider.count == 2
            # The cap counts it all: set to exactly what was spent, the next request is refused and never sent.
            http.patch(f"/threads/{thread['id']}", json={"cap_usd": total})
            refused = http.post(f"/threads/{thread['id']}/messages", json={"content": "go on"})
            assert refused.status_code == 402, refused.text
            assert refused.json()["error"]["spent_usd"] == pytest.approx(total)
            assert provider.count == 2
        log = server.stdout.read() if server.stdout else ""
    assert f"a request of thread {thread['id']} to openai/gpt-x was in flight" in log


# The gateway request both gateway tests kill mid-stream.
GATEWAY_STREAM: dict[str, Any] = {
    "model": "openai/gpt-x",
    "stream": True,
    "messages": [{"role": "user", "content": "tell me a long story"}],
}


def test_killed_mid_stream_a_gateway_request_is_billed_its_worst_case_at_restart(tmp_path):
    provider = PacedOpenAI(Reply(STORY), delay=0.03)
    body, agent = dict(GATEWAY_STREAM), {"Authorization": f"Bearer {AGENT_KEY}"}
    with running(provider.app()) as provider_url:
        with (
            threadweaver(tmp_path, provider_url) as (url, server),
            httpx.Client(base_url=url, timeout=10) as http,
            http.stream("POST", "/v1/chat/completions", json=body, headers=agent) as response,
        ):
            assert response.status_code == 200
            kill_mid_stream(server, response, 20)
        with threadweaver(tmp_path, provider_url) as (url, server), logged_in(url) as http:
            client = http.get("/spend").json()["clients"]["agent"]
            # The gateway stores no text: the reserved worst case, the prompt's bound and the output limit.
            prompt_bound = len("tell me a long story") + 8
            assert (client["tokens_in"], client["tokens_out"]) == (prompt_bound, OUTPUT_LIMIT)
            assert client["spent_usd"] == pytest.approx((prompt_bound + OUTPUT_LIMIT) * PRICE / 1e6)
            assert 0 < client["spent_usd"] <= CAP
            # What is left of the cap is less than another worst case: refused, never sent.
            refused = http.post("/v1/chat/completions", json={**body, "stream": False}, headers=agent)
            assert refused.status_code == 402, refused.text
            assert provider.count == 1


def test_killed_mid_stream_a_free_request_under_a_client_token_cap_is_billed_at_restart(tmp_path):
    """A provider that costs nothing (a local engine, unpriced) and a client capped in tokens only: the token cap
    alone makes the reservation persist, and the restart bills its worst case in tokens."""
    provider = PacedOpenAI(Reply(STORY), delay=0.03)
    body, agent = dict(GATEWAY_STREAM), {"Authorization": f"Bearer {AGENT_KEY}"}
    caps = {"cap_tokens": 500, "max_output_tokens": OUTPUT_LIMIT}  # room for one worst case (328 tokens)
    with running(provider.app()) as provider_url:
        with (
            threadweaver(tmp_path, provider_url, caps, prices={}) as (url, server),
            httpx.Client(base_url=url, timeout=10) as http,
            http.stream("POST", "/v1/chat/completions", json=body, headers=agent) as response,
        ):
            assert response.status_code == 200
            kill_mid_stream(server, response, 20)
        with threadweaver(tmp_path, provider_url, caps, prices={}) as (url, server), logged_in(url) as http:
            client = http.get("/spend").json()["clients"]["agent"]
            prompt_bound = len("tell me a long story") + 8
            assert (client["tokens_in"], client["tokens_out"]) == (prompt_bound, OUTPUT_LIMIT)
            assert (client["spent_tokens"], client["cap_tokens"]) == (prompt_bound + OUTPUT_LIMIT, 500)
            assert client["spent_usd"] == 0
            refused = http.post("/v1/chat/completions", json={**body, "stream": False}, headers=agent)
            assert refused.status_code == 402, refused.text
            assert refused.json()["error"]["code"] == "token_cap_reached"
            assert provider.count == 1
