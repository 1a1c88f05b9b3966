"""``gateway.limits_file``: the swarm supervisor's overrides of its workers' limits, laid over ``gateway.clients``
at start and whenever the file changes, through the real app (raw HTTP, the fake OpenAI provider counting what
it receives). The last test writes the file through the swarm MCP server's ``set_worker_limits`` tool."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from claw.mcp.swarm import Settings as SwarmMcpSettings
from claw.mcp.swarm import build_server, load_swarm
from claw.swarm.limits import Bounds, LimitsFile
from claw.threadweaver.__main__ import build_console, build_gateway
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from mcp import Client

from tests.doubles.providers import FakeOpenAI, Reply
from tests.doubles.worker import LocalUnits
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
KEYS = {"worker-alpha": "sk-tw-worker-alpha-0123456789", "worker-beta": "sk-tw-worker-beta-01234567890"}
OPENAI = "openai/gpt-4o-mini"


def settings_for(tmp_path: Path, limits_file: Path | None) -> Settings:
    for name, key in KEYS.items():
        (tmp_path / f"{name}.key").write_text(key + "\n")
    clients = {
        "worker-alpha": {
            "key_file": str(tmp_path / "worker-alpha.key"),
            "cap_usd": 5.0,
            "max_output_tokens": 512,
            "providers": ["openai"],
        },
        "worker-beta": {"key_file": str(tmp_path / "worker-beta.key"), "cap_usd": 5.0, "max_output_tokens": 512},
    }
    return Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1", "models": ["gpt-4o-mini"]},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_TEST_KEY"},
            },
            "prices": {"openai": {"*": [0.5, 1.0]}, "claude": {"*": [3, 15]}},
            "gateway": {"clients": clients, "limits_file": None if limits_file is None else str(limits_file)},
        }
    )


def write(path: Path, clients: dict[str, Any] | str, version: int = 1) -> None:
    """Replace the file as the swarm's writer does (a new file renamed over the old one)."""
    text = clients if isinstance(clients, str) else json.dumps({"version": version, "clients": clients})
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    temporary.replace(path)


@pytest.fixture
def openai() -> FakeOpenAI:
    return FakeOpenAI(Reply("Hello", input_tokens=10, output_tokens=5))


@pytest.fixture
def limits(tmp_path: Path) -> Path:
    return tmp_path / "worker-limits.json"


@pytest.fixture
def start(tmp_path, openai, limits, monkeypatch):
    """``await start()``: the app (console, gateway, /v1) on the config above, with ``limits`` as its limits file."""
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    monkeypatch.setenv("TW_TEST_KEY", "sk-ant-test")
    opened = []

    def make():
        settings = settings_for(tmp_path, limits)
        console = build_console(settings, transports={"openai": openai.transport()})
        opened.append(console)
        gateway = build_gateway(settings, console)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(console, sessions(), gateway=gateway)), base_url="http://tw"
        )

    yield make
    for console in opened:
        console.store.close()


async def chat(http: httpx.AsyncClient, client: str = "worker-alpha", **body: Any) -> httpx.Response:
    request = {"model": OPENAI, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4000, **body}
    return await http.post("/v1/chat/completions", json=request, headers={"Authorization": f"Bearer {KEYS[client]}"})


async def spend(http: httpx.AsyncClient) -> dict[str, Any]:
    token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
    return (await http.get("/spend", headers={"Authorization": f"Bearer {token}"})).json()


async def test_a_lowered_cap_refuses_a_request_before_anything_is_sent(start, limits, openai):
    # the worst case, 512 output tokens (the client's limit) at $1/1M, is over $0.0005: over the file's cap, far
    # under the config's $5
    write(limits, {"worker-alpha": {"cap_usd": 0.0001}})
    async with start() as http:
        refused = await chat(http)
        assert refused.status_code == 402, refused.text
        assert refused.json()["error"]["type"] == "insufficient_quota"
        assert openai.count == 0
        assert (await chat(http, "worker-beta")).status_code == 200  # the other client keeps its config
        shown = await spend(http)
    assert shown["clients"]["worker-alpha"]["cap_usd"] == 0.0001
    assert shown["clients"]["worker-beta"]["cap_usd"] == 5.0
    assert shown["client_limits"]["worker-alpha"]["max_output_tokens"] == 512  # not in the file: configured
    assert shown["limits_file"] == {"path": str(limits), "problem": None}


async def test_a_changed_file_applies_without_a_restart(start, limits, openai):
    write(limits, {"worker-alpha": {"max_output_tokens": 256}})
    async with start() as http:
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 256
        write(limits, {"worker-alpha": {"max_output_tokens": 128, "max_history_turns": 2}})
        with anyio.fail_after(2):
            while True:
                assert (await chat(http)).status_code == 200
                if openai.bodies[-1]["max_completion_tokens"] == 128:
                    break
                await anyio.sleep(0.05)
        # a key the file no longer gives is the configured one again
        write(limits, {"worker-alpha": {"cap_usd": 4.0}})
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 512
        assert (await spend(http))["clients"]["worker-alpha"]["cap_usd"] == 4.0


async def test_a_new_cap_counts_what_was_spent_already(start, limits, openai):
    async with start() as http:
        for _ in range(3):
            assert (await chat(http, max_tokens=10)).status_code == 200
        spent = (await spend(http))["clients"]["worker-alpha"]["spent_usd"]
        assert spent > 0
        write(limits, {"worker-alpha": {"cap_usd": spent}})  # reached by what the ledger holds
        refused = await chat(http, max_tokens=10)
        assert refused.status_code == 402, refused.text
        assert openai.count == 3


BAD = {
    "negative cap": {"worker-alpha": {"cap_usd": -1, "max_output_tokens": 64}},
    "no cap": {"worker-alpha": {"cap_usd": None, "max_output_tokens": 64}},
    "infinite cap": '{"version": 1, "clients": {"worker-alpha": {"cap_usd": Infinity}}}',
    "zero tokens": {"worker-alpha": {"max_output_tokens": 0}},
    "a string": {"worker-alpha": {"max_output_tokens": "64"}},
    "unknown key": {"worker-alpha": {"max_output_tokens": 64, "temperature": 2}},
    "not a mapping": {"worker-alpha": 64},
    "garbage JSON": '{"version": 1, "clients": {"worker-alpha": {"max_output_tok',
    "wrong version": ({"worker-alpha": {"max_output_tokens": 64}}, 2),
    "no clients": '{"version": 1}',
}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
async def test_a_bad_file_keeps_the_limits_in_force(start, limits, openai, caplog, bad):
    write(limits, {"worker-alpha": {"max_output_tokens": 256, "cap_usd": 1.0}})
    async with start() as http:
        assert (await chat(http)).status_code == 200
        content, version = bad if isinstance(bad, tuple) else (bad, 1)
        write(limits, content, version)
        with caplog.at_level(logging.WARNING, logger="claw.threadweaver.limits"):
            for _ in range(3):
                assert (await chat(http)).status_code == 200
                assert openai.bodies[-1]["max_completion_tokens"] == 256
            shown = await spend(http)
        assert (await http.get("/healthz")).status_code == 200
    assert shown["clients"]["worker-alpha"]["cap_usd"] == 1.0
    assert "is invalid" in shown["limits_file"]["problem"]
    warnings = [r for r in caplog.records if r.name == "claw.threadweaver.limits" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one warning for the file, not one per request


async def test_a_bad_missing_or_unreadable_file_at_start_leaves_the_config(start, limits, openai):
    write(limits, {"worker-alpha": {"cap_usd": -5}})
    async with start() as http:
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 512
    limits.unlink()
    async with start() as http:
        assert (await chat(http)).status_code == 200
        assert (await spend(http))["limits_file"]["problem"] == "does not exist"
    if os.geteuid() != 0:  # root reads any file
        write(limits, {"worker-alpha": {"max_output_tokens": 64}})
        limits.chmod(0)
        async with start() as http:
            assert (await chat(http)).status_code == 200
            assert openai.bodies[-1]["max_completion_tokens"] == 512
            assert "cannot be read" in (await spend(http))["limits_file"]["problem"]


async def test_a_removed_file_keeps_the_last_limits(start, limits, openai):
    write(limits, {"worker-alpha": {"max_output_tokens": 100}})
    async with start() as http:
        assert (await chat(http)).status_code == 200
        limits.unlink()
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 100


async def test_unknown_clients_are_ignored_and_providers_cannot_be_changed(start, limits, openai, caplog):
    write(limits, {"worker-ghost": {"cap_usd": 1.0}, "worker-alpha": {"max_output_tokens": 200}})
    with caplog.at_level(logging.WARNING, logger="claw.threadweaver.limits"):
        async with start() as http:
            assert (await chat(http)).status_code == 200
            assert openai.bodies[-1]["max_completion_tokens"] == 200
            shown = await spend(http)
            assert "worker-ghost" not in shown["clients"] and "worker-ghost" not in shown["client_limits"]
            # no key of the config's reaches a client the file names (it creates none)
            assert (await chat(http, "worker-alpha", model="claude/claude-x")).status_code == 403
            write(limits, {"worker-alpha": {"max_output_tokens": 64, "providers": ["openai", "claude"]}})
            forbidden = await chat(http, "worker-alpha", model="claude/claude-x")
            assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "provider_not_allowed"
            assert (await chat(http)).status_code == 200
            assert openai.bodies[-1]["max_completion_tokens"] == 200  # the file with providers is refused whole
    messages = [r.getMessage() for r in caplog.records if r.name == "claw.threadweaver.limits"]
    assert any("worker-ghost" in m and "not configured" in m for m in messages), messages
    assert any("providers may not be set here" in m for m in messages), messages


async def test_the_supervisors_set_worker_limits_tool_reaches_the_gateway(start, limits, openai, tmp_path):
    swarm_yml = tmp_path / "swarm.yml"
    worker = {"name": "alpha", "unit": "openclaw-worker@alpha.service", "health_url": "http://127.0.0.1:9/healthz"}
    swarm_yml.write_text(json.dumps({"store": {"path": str(tmp_path / "incidents.db")}, "workers": [worker]}))
    swarm = SwarmMcpSettings(
        swarm_config=swarm_yml,
        limits_file=limits,
        bounds=Bounds.model_validate({"cap_usd": {"min": 0, "max": 5}, "max_output_tokens": {"min": 64, "max": 1024}}),
    )
    server = build_server(swarm, load_swarm(swarm), LocalUnits({}, tmp_path))  # set_worker_limits starts no unit
    async with start() as http, Client(server) as supervisor:
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 512
        result = await supervisor.call_tool("set_worker_limits", {"worker": "alpha", "max_output_tokens": 100})
        assert not result.is_error, result.content
        assert oct(limits.stat().st_mode & 0o777) == "0o640"
        assert (await chat(http)).status_code == 200
        assert openai.bodies[-1]["max_completion_tokens"] == 100
        result = await supervisor.call_tool("set_worker_limits", {"worker": "alpha", "cap_usd": 0.0})
        assert not result.is_error, result.content
        sent = openai.count
        assert (await chat(http)).status_code == 402
        assert openai.count == sent
        assert (await spend(http))["client_limits"]["worker-alpha"]["cap_usd"] == 0.0
    # the writer's own reader agrees with what the gateway applied
    assert LimitsFile(limits, Bounds()).limits("alpha") == {"max_output_tokens": 100, "cap_usd": 0.0}
