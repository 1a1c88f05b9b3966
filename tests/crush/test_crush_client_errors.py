"""Every precise error, produced by the fakes' real-shaped answers, a closed port and a hung server."""

from __future__ import annotations

import errno
import socket

import httpx
import pytest
from claw.engine import errors
from claw.engine.client import EngineClient
from claw.engine.errors import (
    CrushError,
    CrushUnreachable,
    EngineDown,
    EngineError,
    EngineTimeout,
    ModelMissing,
    OutOfMemory,
    UnsupportedOperation,
)

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hi"}]


def test_codes_are_stable_and_distinct():
    classes = [
        CrushUnreachable, EngineTimeout, EngineDown, ModelMissing, OutOfMemory, UnsupportedOperation, EngineError
    ]  # fmt: skip
    codes = [cls.code for cls in classes]
    assert codes == [
        "crush_unreachable",
        "engine_timeout",
        "engine_down",
        "model_missing",
        "out_of_memory",
        "unsupported_operation",
        "engine_error",
    ]
    assert all(issubclass(cls, CrushError) for cls in classes)


async def test_closed_port_is_engine_down(closed_port_url):
    # A refused connection is the node's kernel answering: crush is up, nothing listens on the engine port.
    address = closed_port_url.removeprefix("http://")
    async with EngineClient(closed_port_url, timeout=2) as client:
        with pytest.raises(EngineDown) as caught:
            await client.list_models()
        health = await client.health()
    message = str(caught.value)
    assert message.startswith(f"nothing listens on {address} (connection refused)")
    assert "stopped or still starting" in message and "powered on" not in message and "\n" not in message
    assert health.reachable and not health.ready
    assert health.error_code == "engine_down" and health.error == message


@pytest.mark.parametrize(
    ("exc", "expected", "fragment"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), EngineDown, "nothing listens on"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), CrushUnreachable, "no route to host"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), CrushUnreachable, "network unreachable"),
        (socket.gaierror(-2, "Name or service not known"), CrushUnreachable, "host name not found"),
    ],
)
def test_connect_failures_tell_a_stopped_engine_from_an_unreachable_node(exc, expected, fragment):
    request = httpx.Request("GET", "http://192.0.2.7:8080/v1/models")
    try:
        raise httpx.ConnectError("All connection attempts failed", request=request) from exc
    except httpx.ConnectError as err:
        crush = errors.from_exception(err, "192.0.2.7:8080", "GET /v1/models", 5)
    assert type(crush) is expected and fragment in str(crush) and "192.0.2.7:8080" in str(crush)
    assert ("powered on" in str(crush)) == (expected is CrushUnreachable)


def test_connect_timeout_is_unreachable():
    request = httpx.Request("GET", "http://192.0.2.7:8080/v1/models")
    crush = errors.from_exception(httpx.ConnectTimeout("timed out", request=request), "192.0.2.7:8080", "GET", 5)
    assert isinstance(crush, CrushUnreachable) and "no answer to connect within 5 s" in str(crush)


async def test_unknown_host_is_unreachable():
    async with EngineClient("http://crush.invalid:8080", engine="ollama", timeout=2) as client:
        with pytest.raises(CrushUnreachable, match=r"crush\.invalid:8080"):
            await client.loaded_models()


async def test_hung_engine_times_out(ollama):
    ollama.mode = "hung"
    async with EngineClient(ollama.url, timeout=0.2) as client:
        with pytest.raises(EngineTimeout) as caught:
            await client.list_models()
        health = await client.health()
    assert "did not answer GET /api/version within 0.2 s" in str(caught.value)
    assert health.reachable and not health.ready and health.error_code == "engine_timeout"


async def test_slow_chat_stream_times_out_mid_answer(ollama):
    async with EngineClient(ollama.url, engine="ollama", timeout=0.2) as client:
        ollama.mode = "hung"
        with pytest.raises(EngineTimeout, match="POST /api/chat"):
            await client.chat("qwen3:4b", HELLO, stream=True)


@pytest.mark.parametrize("engine", ["auto", "ollama", "llamacpp"])
async def test_proxy_502_is_engine_down(ollama, engine):
    ollama.mode = "down"
    async with EngineClient(ollama.url, engine=engine) as client:
        with pytest.raises(EngineDown, match="HTTP 502") as caught:
            await client.loaded_models()
        health = await client.health()
    assert "check the engine service (ollama or llamacpp)" in str(caught.value)
    assert health.reachable and health.error_code == "engine_down"


async def test_wrong_service_is_engine_down(llamacpp):
    llamacpp.mode = "wrong_service"
    async with EngineClient(llamacpp.url) as client:
        with pytest.raises(EngineDown, match="other than JSON"):
            await client.engine()


async def test_ollama_missing_model_lists_the_available_ones(ollama):
    async with EngineClient(ollama.url) as client:
        with pytest.raises(ModelMissing) as caught:
            await client.chat("mistral:7b", HELLO)
        with pytest.raises(ModelMissing):
            await client.unload_model("mistral:7b")
    err = caught.value
    assert err.model == "mistral:7b" and err.available == ("qwen3:4b", "llama3.2:1b")
    assert str(err) == (
        "model 'mistral:7b' is not on the crush node (available: qwen3:4b, llama3.2:1b); "
        "add it to crush_models and run playbooks/models.yml, or pull it with pull_model"
    )


async def test_pull_of_unknown_name_says_the_library_lacks_it(ollama):
    async with EngineClient(ollama.url) as client:
        with pytest.raises(ModelMissing, match="does not exist in the Ollama library") as caught:
            await client.pull_model("no-such-model:1b")
    assert caught.value.remote


async def test_pull_without_internet_says_so(ollama):
    ollama.offline = True
    async with EngineClient(ollama.url) as client:
        with pytest.raises(EngineError, match="needs internet access") as caught:
            await client.pull_model("gemma3:270m")
    assert "registry.ollama.ai" in str(caught.value)


async def test_ollama_out_of_memory_says_how_much(ollama):
    ollama.oom["llama3.2:1b"] = ("5.6 GiB", "3.2 GiB")
    async with EngineClient(ollama.url) as client:
        with pytest.raises(OutOfMemory) as caught:
            await client.chat("llama3.2:1b", HELLO, stream=True)
    assert (caught.value.needed, caught.value.available) == ("5.6 GiB", "3.2 GiB")
    assert str(caught.value).startswith(
        "model 'llama3.2:1b' does not fit in the crush node's memory: it needs 5.6 GiB, 3.2 GiB is available;"
    )


async def test_llamacpp_unknown_model_is_caught_before_the_default_answers(llamacpp):
    async with EngineClient(llamacpp.url) as client:
        with pytest.raises(ModelMissing) as caught:
            await client.chat("qwen3:4b", HELLO)
    assert caught.value.available == ("gemma3-270m", "qwen2.5-1.5b")
    assert "pull_model" not in str(caught.value) and "playbooks/models.yml" in str(caught.value)
    assert not llamacpp.requests  # the default model never answered in its place


async def test_llamacpp_model_file_gone(llamacpp):
    llamacpp.missing_files.add("qwen2.5-1.5b")
    async with EngineClient(llamacpp.url) as client:
        with pytest.raises(ModelMissing, match=r"'qwen2\.5-1\.5b' is not on the crush node") as caught:
            await client.chat("qwen2.5-1.5b", HELLO)
    assert caught.value.available == ("gemma3-270m", "qwen2.5-1.5b")


async def test_llamacpp_out_of_memory(llamacpp):
    llamacpp.oom.add("gemma3-270m")
    async with EngineClient(llamacpp.url) as client:
        with pytest.raises(OutOfMemory, match=r"it needed 2304\.00 MiB more"):
            await client.chat("gemma3-270m", HELLO, stream=True)


@pytest.mark.parametrize("operation", ["pull_model", "unload_model"])
async def test_llamacpp_cannot_pull_or_unload(llamacpp, operation):
    async with EngineClient(llamacpp.url) as client:
        with pytest.raises(UnsupportedOperation) as caught:
            await getattr(client, operation)("gemma3-270m")
    assert str(caught.value) == (
        f"{operation} is not supported: the llama.cpp engine serves the models Ansible configured; "
        "add it to crush_models and run playbooks/models.yml"
    )
    assert not llamacpp.requests


@pytest.mark.parametrize(
    ("status", "body", "model", "expected", "fragment"),
    [
        (500, b'{"error":"llama runner process has terminated: exit status 2"}', "m", EngineError, "exit status 2"),
        (400, b'{"error":"invalid options: foo"}', None, EngineError, "HTTP 400"),
        (503, b'{"error":{"message":"Loading model","type":"unavailable_error","code":503}}', None, EngineDown, "Load"),
        (500, b"<html>Internal Server Error</html>", None, EngineDown, "HTTP 500"),
        (404, b"404 page not found", None, EngineDown, "right service and port"),
        (500, b'{"error":"model requires more system memory than is available"}', "m", OutOfMemory, "model 'm'"),
        (400, b'{"error":{"message":"x","code":"model_not_found"}}', "m", ModelMissing, "'m' is not on"),
        (500, b'{"error":"unable to allocate CUDA0 buffer"}', None, OutOfMemory, "unable to allocate"),
    ],
)
def test_response_classification(status, body, model, expected, fragment):
    err = errors.from_response(
        status, body, address="crush:11434", action="POST /api/chat", engine="ollama", model=model
    )
    assert type(err) is expected
    assert fragment in str(err)


def test_messages_are_one_line_and_bounded():
    err = EngineError("line one\nline two " + "x" * 2000, 500)
    assert "\n" not in str(err) and len(str(err)) <= 600
