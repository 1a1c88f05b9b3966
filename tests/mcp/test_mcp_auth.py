"""Who is calling: over HTTP every request carries a configured client's key, and a client gets only its tools,
its files root and a bounded number of sessions (issue #18).

A real ``claw mcp serve`` (files, time, system, swarm) with four clients:

* tester: every tool, the whole sandbox;
* reader: files' read_file and list_directory only, all of time, its own files root, at most 2 sessions;
* writer: every files tool, its own files root;
* timeonly: the time server alone.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from claw.mcp.registry import ConfigError, ProcessConfig, callers
from claw.mcp.runtime import Callers, key_digest
from mcp.shared.exceptions import MCPError

from tests.mcp.keys import KEY, clients, digest, keyed, write_key
from tests.mcp.test_mcp_relay import INITIALIZE, INITIALIZED
from tests.mcp.test_mcp_runtime import claw_command, free_port

pytestmark = pytest.mark.anyio

READER_KEY = "reader-key-" + "r" * 40
WRITER_KEY = "writer-key-" + "w" * 40
TIME_KEY = "time-only-key-" + "t" * 40
SERVERS = ("files", "time", "system", "swarm")
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("auth")
    root = base / "sandbox"
    root.mkdir()
    (root / "top.txt").write_text("top\n")
    ports = {name: free_port() for name in SERVERS}
    swarm_yml = base / "swarm.yml"
    swarm_yml.write_text(
        json.dumps(
            {"workers": [{"name": "w", "unit": "openclaw-worker@w.service", "health_url": "http://127.0.0.1:1/"}]}
        )
    )
    metrics_port = free_port()
    config = {
        "metrics_port": metrics_port,
        "max_sessions": 16,
        "servers": {
            "files": {"port": ports["files"], "root": str(root)},
            "time": {"port": ports["time"], "database": str(base / "t.sqlite3"), "zone": "UTC"},
            "system": {"port": ports["system"]},
            "swarm": {"port": ports["swarm"], "swarm_config": str(swarm_yml), "limits_file": str(base / "l.json")},
        },
        "clients": clients(
            reader={
                "key_file": str(write_key(base / "reader.key", READER_KEY)),
                "servers": {"files": ["read_file", "list_directory"], "time": "*"},
                "files_root": "reader",
                "max_sessions": 2,
            },
            writer={"key_sha256": digest(WRITER_KEY), "servers": {"files": "*"}, "files_root": "writer/space"},
            timeonly={"key_sha256": digest(TIME_KEY), "servers": {"time": "*"}},
        ),
    }
    path = base / "mcp.yml"
    path.write_text(json.dumps(config))
    log = base / "serve.log"  # not a pipe: a full pipe would stop the service mid-flood
    process = subprocess.Popen(claw_command("mcp", "serve", "--config", str(path)), stderr=log.open("wb"))
    deadline = time.monotonic() + 30
    for port in [*ports.values(), metrics_port]:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)
    yield {"ports": ports, "root": root, "process": process}
    process.terminate()
    process.wait(10)


def url(served: dict[str, Any], name: str) -> str:
    return f"http://127.0.0.1:{served['ports'][name]}/mcp"


def initialize(http: httpx.Client, target: str, key: str | None) -> httpx.Response:
    headers = dict(HEADERS, **({"Authorization": f"Bearer {key}"} if key else {}))
    return http.post(target, json=INITIALIZE, headers=headers)


@pytest.mark.parametrize("name", SERVERS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer x", f"Basic {KEY}", f"Bearer {KEY[:-1]}", f"Bearer {KEY}x", f"Bearer {digest(KEY)}"],
)
def test_a_request_without_a_known_key_is_refused_on_every_server(served, name, authorization):
    headers = dict(HEADERS, **({"Authorization": authorization} if authorization is not None else {}))
    with httpx.Client(timeout=10) as http:
        for method in ("POST", "GET", "DELETE"):
            answer = http.request(method, url(served, name), json=INITIALIZE, headers=headers)
            assert answer.status_code == 401, (method, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "client key" in answer.json()["error"]["message"]
            assert "mcp-session-id" not in answer.headers


@pytest.mark.parametrize("name", SERVERS)
async def test_a_known_client_lists_and_calls(served, name):
    async with keyed(url(served, name)) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert tools


def test_a_client_is_refused_a_server_outside_its_allow_list(served):
    with httpx.Client(timeout=10) as http:
        answer = initialize(http, url(served, "system"), READER_KEY)
        assert answer.status_code == 403
        assert "reader may not use the system server" in answer.json()["error"]["message"]
        assert initialize(http, url(served, "files"), TIME_KEY).status_code == 403
        assert initialize(http, url(served, "time"), TIME_KEY).status_code == 200


async def test_a_client_sees_and_calls_only_its_allowed_tools(served):
    async with keyed(url(served, "files"), READER_KEY) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {"read_file", "list_directory"}
        with pytest.raises(MCPError, match="client reader may not call files tool 'write_file'"):
            await client.call_tool("write_file", {"path": "x.txt", "content": "no"})
        with pytest.raises(MCPError, match="may not call files tool 'sandbox_path'"):
            await client.call_tool("sandbox_path", {})
        assert not (await client.call_tool("list_directory", {"path": ""})).is_error
    assert not (served["root"] / "reader" / "x.txt").exists()
    async with keyed(url(served, "files")) as client:  # tester: every tool
        assert len((await client.list_tools()).tools) == 7


async def test_each_files_client_is_confined_to_its_root(served):
    root: Path = served["root"]
    async with keyed(url(served, "files"), WRITER_KEY) as writer:
        result = await writer.call_tool("write_file", {"path": "mine.txt", "content": "writer's\n"})
        assert not result.is_error, result.content
        info = await writer.call_tool("sandbox_path", {})
        assert info.structured_content["root"] == str(root / "writer" / "space")
        listing = await writer.call_tool("list_directory", {"path": ""})
        assert [entry["name"] for entry in listing.structured_content["entries"]] == ["mine.txt"]
        for escape in ("../../top.txt", str(root / "top.txt"), "/etc/passwd"):
            result = await writer.call_tool("read_file", {"path": escape})
            assert result.is_error, escape
    assert (root / "writer" / "space" / "mine.txt").read_text() == "writer's\n"
    assert not (root / "mine.txt").exists()
    async with keyed(url(served, "files"), READER_KEY) as reader:
        listing = await reader.call_tool("list_directory", {"path": ""})
        assert listing.structured_content["entries"] == []
        assert (await reader.call_tool("read_file", {"path": "../writer/space/mine.txt"})).is_error
    async with keyed(url(served, "files")) as tester:  # no files_root: the whole sandbox
        result = await tester.call_tool("read_file", {"path": "writer/space/mine.txt"})
        assert not result.is_error


def test_a_session_belongs_to_the_client_that_opened_it(served):
    with httpx.Client(timeout=10) as http:
        opened = initialize(http, url(served, "time"), READER_KEY)
        session = opened.headers["mcp-session-id"]
        for key in (KEY, TIME_KEY):
            headers = dict(HEADERS, **{"Authorization": f"Bearer {key}", "Mcp-Session-Id": session})
            assert http.post(url(served, "time"), json=INITIALIZED, headers=headers).status_code == 404
        headers = dict(HEADERS, **{"Authorization": f"Bearer {READER_KEY}", "Mcp-Session-Id": session})
        assert http.post(url(served, "time"), json=INITIALIZED, headers=headers).status_code == 202


def test_a_client_opening_more_sessions_than_it_may_ends_its_oldest(served):
    with httpx.Client(timeout=10) as http:
        sessions = [initialize(http, url(served, "time"), READER_KEY).headers["mcp-session-id"] for _ in range(3)]

        def status(session: str) -> int:
            headers = dict(HEADERS, **{"Authorization": f"Bearer {READER_KEY}", "Mcp-Session-Id": session})
            return http.post(url(served, "time"), json=INITIALIZED, headers=headers).status_code

        assert [status(session) for session in sessions] == [404, 202, 202]


def test_an_initialize_flood_is_refused_and_leaves_memory_flat(served):
    pid = served["process"].pid
    target = url(served, "time")
    with httpx.Client(timeout=10) as http:
        for _ in range(200):  # warm up: the first requests allocate what every later one reuses
            initialize(http, target, None)
            initialize(http, target, KEY)
        before = rss_kib(pid)
        started = time.monotonic()
        statuses = [initialize(http, target, None).status_code for _ in range(3000)]
        anonymous_s = time.monotonic() - started
        after_anonymous = rss_kib(pid)
        keyed_statuses = [initialize(http, target, KEY).status_code for _ in range(500)]
        after_keyed = rss_kib(pid)
    assert statuses == [401] * 3000
    assert keyed_statuses == [200] * 500  # each new one ends the client's oldest: never more than 8 open
    print(f"RSS {before} KiB -> {after_anonymous} KiB after 3000 anonymous in {anonymous_s:.1f} s -> {after_keyed}")
    assert after_anonymous - before < 4 * 1024
    assert after_keyed - before < 8 * 1024


def test_clients_are_configured_by_key_digest_or_key_file(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("too-short\n")
    config = ProcessConfig.model_validate({"clients": {"a": {"key_file": str(short), "servers": {"time": "*"}}}})
    with pytest.raises(ConfigError, match=r"clients.a: key_file .* holds 9 characters; a key needs 32"):
        callers(config)
    missing = ProcessConfig.model_validate({"clients": {"a": {"key_file": str(tmp_path / "no"), "servers": {}}}})
    with pytest.raises(ConfigError, match="cannot read key_file"):
        callers(missing)
    good = ProcessConfig.model_validate(
        {"clients": {"a": {"key_file": str(write_key(tmp_path / "a.key")), "servers": {"time": ["now"]}}}}
    )
    assert callers(good) == [("a", key_digest(KEY), {"time": frozenset({"now"})}, 8)]
    for bad in (
        {"servers": {}},  # no key at all
        {"key_sha256": digest(KEY), "key_file": str(short)},  # both
        {"key_sha256": "ABC"},
        {"key_sha256": digest(KEY), "servers": {"nosuch": "*"}},
        {"key_sha256": digest(KEY), "files_root": "../up"},
        {"key_sha256": digest(KEY), "files_root": "/abs"},
        {"key_sha256": digest(KEY), "servers": {"time": "all"}},
    ):
        with pytest.raises(ValueError):
            ProcessConfig.model_validate({"clients": {"a": bad}})


def test_keys_are_matched_whole():
    known = Callers([])
    assert known.identify(f"Bearer {KEY}") is None
    from claw.mcp.runtime import Caller

    known = Callers([Caller("a", key_digest(KEY), {"time": frozenset({"*"})})])
    assert known.identify(f"Bearer {KEY}").name == "a"
    assert known.identify(f"bearer   {KEY}  ").name == "a"
    for header in (None, "", "Bearer", KEY, f"Token {KEY}", f"Bearer {KEY.upper()}"):
        assert known.identify(header) is None


def test_serving_over_http_needs_clients(tmp_path, capsys):
    from claw.cli import main

    config = tmp_path / "mcp.yml"
    config.write_text(f"metrics_port: 9709\nservers:\n  time: {{port: 9704, database: '{tmp_path}/t.db'}}\n")
    for argv in (["serve"], ["check"], ["time", "--http"]):
        assert main(["mcp", *argv, "--config", str(config)]) == 2
        assert "clients: required to serve over HTTP" in capsys.readouterr().err
