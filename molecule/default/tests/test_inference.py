"""crush serves a real model to claw over the LAN, and nobody else gets in."""

from __future__ import annotations

import json
import re

import testinfra

MODEL = "gemma3-270m"
URL = "http://molecule-crush:8080/v1"

# Runs inside a node with nothing but the standard library: POST a chat request, print the
# status and the raw body (a JSON document, or the server-sent event stream).
CLIENT = r"""
import json, sys, urllib.request
body = json.loads(sys.argv[2])
req = urllib.request.Request(sys.argv[1], data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=float(sys.argv[3])) as resp:
    print(resp.status)
    print(resp.read().decode())
"""


def chat(node, stream: bool, timeout: float = 120):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 12,
        "temperature": 0,
        "stream": stream,
    }
    return node.run("python3 -c %s %s %s %s", CLIENT, f"{URL}/chat/completions", json.dumps(body), str(timeout))


def test_engine_runs_hardened_as_its_own_user(crush):
    service = crush.service("llamacpp")
    assert service.is_running and service.is_enabled
    props = crush.check_output("systemctl show llamacpp -p User -p NoNewPrivileges -p ProtectSystem -p PrivateDevices")
    assert "User=llamacpp" in props
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "PrivateDevices=yes" in props
    assert crush.file("/opt/llamacpp/current").is_symlink


def _system_info_features(info: str) -> dict[str, int]:
    """``llama_print_system_info``'s CPU section as {feature: 0/1} (``CPU : SSE3 = 1 | AVX = 1 | ...``)."""
    return {name: int(value) for name, value in re.findall(r"\b([A-Z][A-Z0-9_]+) = ([01])\b", info)}


def test_engine_is_built_for_a_portable_baseline_not_this_cpu(crush):
    """The wheel runs on any CPU of its baseline: built with GGML_NATIVE off, it uses nothing this host adds.

    This host's CPU has AVX-512 (and CI's may have AMX, whose weight repacking crashed the first completion of a
    native build): a native wheel reports them in llama_print_system_info, a portable one does not.
    """
    record = json.loads(crush.check_output("cat /opt/llamacpp/current/build-info.json"))
    assert "-DGGML_NATIVE=OFF" in record["cmake_args"].split(), record
    assert record["cpu_baseline"] in ("x86-64-v3", "x86-64", "armv8-a"), record
    assert record["smoke"]["ok"] is True and record["smoke"]["text"], record
    info = crush.check_output(
        "/opt/llamacpp/current/venv/bin/python -c "
        "'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())'"
    )
    features = _system_info_features(info)
    assert features, info
    beyond_baseline = [
        name for name, on in features.items() if on and name.startswith(("AVX512", "AMX", "AVX_VNNI", "SVE", "SME"))
    ]
    assert beyond_baseline == [], info
    assert record["smoke"]["system_info"] == info.strip()


def test_real_chat_completion_from_claw(claw):
    result = chat(claw, stream=False)
    assert result.rc == 0, result.stderr
    status, body = result.stdout.split("\n", 1)
    assert status == "200"
    answer = json.loads(body)
    assert answer["model"].endswith(MODEL) or answer["model"] == MODEL
    assert isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["completion_tokens"] > 0


def test_streamed_completion_from_claw(claw):
    result = chat(claw, stream=True)
    assert result.rc == 0, result.stderr
    status, body = result.stdout.split("\n", 1)
    assert status == "200"
    events = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2, "a stream should arrive in several chunks"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


# Streams a completion and, once the first chunk arrived, asks for the model list from a second
# connection (what the crush exporter does on every scrape); prints the stream's last finish_reason
# and the model list's status.
STREAM_WITH_SCRAPE = r"""
import json, sys, threading, urllib.request
base = sys.argv[1]
body = {"model": sys.argv[2], "messages": [{"role": "user", "content": "Count from one to fifty in words."}],
        "max_tokens": 40, "temperature": 0, "stream": True}
req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
scrape = {}
def list_models():
    with urllib.request.urlopen(base + "/models", timeout=120) as resp:
        scrape["status"] = resp.status
poller = threading.Thread(target=list_models)
finish = None
with urllib.request.urlopen(req, timeout=120) as resp:
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: {"):
            continue
        if poller.ident is None:
            poller.start()
        finish = json.loads(line[len("data: "):])["choices"][0].get("finish_reason") or finish
poller.join()
print(finish, scrape.get("status"))
"""


def test_a_stream_survives_a_metrics_scrape(claw):
    """Another request during a stream waits for it instead of cutting it short (llama-cpp-python's default)."""
    result = claw.run("python3 -c %s %s %s", STREAM_WITH_SCRAPE, URL, MODEL)
    assert result.rc == 0, result.stderr
    finish_reason, models_status = result.stdout.split()
    assert finish_reason in ("length", "stop"), "the stream was cut short (no finish_reason)"
    assert models_status == "200"


def test_a_host_outside_the_allow_list_is_refused():
    outsider = testinfra.get_host("nsenter://molecule-outsider")
    result = chat(outsider, stream=False, timeout=5)
    assert result.rc != 0
    assert "timed out" in result.stderr or "TimeoutError" in result.stderr, result.stderr


def test_model_file_is_content_addressed_and_alone(crush):
    """The GGUF is named by its checksum prefix; no other model file lingers (pruning)."""
    assert crush.check_output("ls /var/lib/llamacpp/models").split() == ["gemma3-270m-a5fd3b62230a.gguf"]
    assert crush.file("/var/lib/llamacpp/models/gemma3-270m-a5fd3b62230a.gguf").size > 200_000_000
