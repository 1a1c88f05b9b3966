"""The crush provider against the crush tests' fake engines on real sockets (llama.cpp and Ollama): out of memory
and a stopped engine reach the caller with crush's own wording and code, from the adapter and from the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from claw.threadweaver import providers
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from claw.threadweaver.providers import errors
from claw.threadweaver.providers.model import Message, Request

from tests.doubles.engine import FakeLlamaCpp, FakeOllama
from tests.doubles.http import closed_port_url, running
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
MODELS = {"llamacpp": "gemma3-270m", "ollama": "qwen3:4b"}


def base_url(kind: str, url: str) -> str:
    return f"{url}/v1" if kind == "llamacpp" else url  # llama.cpp's OpenAI-compatible base URL ends in /v1


@pytest.fixture(params=["llamacpp", "ollama"])
def engine(request) -> Iterator[tuple[str, FakeLlamaCpp | FakeOllama]]:
    fake = FakeLlamaCpp() if request.param == "llamacpp" else FakeOllama()
    with running(fake.app()) as url:
        fake.url = url
        yield request.param, fake


def out_of_memory(kind: str, fake: FakeLlamaCpp | FakeOllama) -> None:
    if isinstance(fake, FakeLlamaCpp):
        fake.oom.add(MODELS[kind])
    else:
        fake.oom[MODELS[kind]] = ("5.6 GiB", "3.2 GiB")


def ask(kind: str) -> Request:
    return Request(model=MODELS[kind], messages=[Message("user", "hi")])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_out_of_memory_is_down_with_crush_code(engine, stream):
    kind, fake = engine
    out_of_memory(kind, fake)
    adapter = providers.build("crush", "crush", base_url(kind, fake.url), engine=kind, timeout=5)
    with pytest.raises(errors.ProviderDown) as caught:
        if stream:
            async for _chunk in adapter.stream(ask(kind)):
                pass
        else:
            await adapter.complete(ask(kind))
    assert caught.value.crush_code == "out_of_memory"
    message = str(caught.value)
    assert f"model '{MODELS[kind]}' does not fit in the crush node's memory" in message
    amounts = "it needed 2304.00 MiB more" if kind == "llamacpp" else "it needs 5.6 GiB, 3.2 GiB is available"
    assert amounts in message and "unload other models" in message


async def test_proxy_502_is_engine_down(engine):
    kind, fake = engine
    fake.mode = "down"
    adapter = providers.build("crush", "crush", base_url(kind, fake.url), engine=kind, timeout=5)
    with pytest.raises(errors.ProviderDown, match=r"answers but its inference engine is not working \(HTTP 502") as c:
        await adapter.complete(ask(kind))
    assert c.value.crush_code == "engine_down"


@pytest.mark.parametrize("kind", ["llamacpp", "ollama"])
async def test_closed_port_is_engine_down(kind):
    url = closed_port_url()
    adapter = providers.build("crush", "crush", base_url(kind, url), engine=kind, timeout=5)
    with pytest.raises(errors.ProviderDown) as caught:
        await adapter.complete(ask(kind))
    assert caught.value.crush_code == "engine_down"
    assert str(caught.value).startswith(f"nothing listens on {url.removeprefix('http://')} (connection refused)")


@pytest.fixture
async def api(tmp_path, engine, monkeypatch) -> AsyncIterator[tuple[httpx.AsyncClient, str, FakeLlamaCpp | FakeOllama]]:
    kind, fake = engine
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "ab" * 32)
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "crush": {"kind": "crush", "base_url": base_url(kind, fake.url), "engine": kind, "timeout_s": 5}
            },
        }
    )
    console = build_console(settings)
    app = create_app(console, sessions())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http, kind, fake
    console.store.close()


async def send(http: httpx.AsyncClient, kind: str) -> httpx.Response:
    thread = (await http.post("/threads", json={"provider": "crush", "model": MODELS[kind]})).json()
    return await http.post(f"/threads/{thread['id']}/messages", json={"content": "hi"})


async def test_api_answers_a_working_engine(api):
    http, kind, _fake = api
    answer = await send(http, kind)
    assert answer.status_code == 200, answer.text
    assert answer.json()["reply"]["content"] == f"Hello from {MODELS[kind]}"


async def test_api_says_out_of_memory(api):
    http, kind, fake = api
    out_of_memory(kind, fake)
    answer = await send(http, kind)
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert (error["code"], error["crush_code"]) == ("provider_down", "out_of_memory")
    assert f"model '{MODELS[kind]}' does not fit in the crush node's memory" in error["message"]


async def test_api_says_the_engine_is_down(api):
    http, kind, fake = api
    fake.mode = "down"
    answer = await send(http, kind)
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert (error["code"], error["crush_code"]) == ("provider_down", "engine_down")
    assert "HTTP 502" in error["message"] and "check the engine service (ollama or llamacpp)" in error["message"]
