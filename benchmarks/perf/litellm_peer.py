"""LiteLLM's proxy as the ThreadWeaver benchmark's peer: a pinned ``litellm[proxy]`` in a venv of its own, started
against the same fake engine (an OpenAI-compatible provider), no database, a throw-away master key.

The venv is ``$XDG_CACHE_HOME/picocluster-claw/litellm-<version>`` (``~/.cache/...``), made on first use from
``litellm-requirements.txt`` beside this file: every package of the closure pinned with its sha256, installed with
``pip install --require-hashes --no-deps`` (the hashes are those of the wheels for Linux x86_64, CPython 3.11,
the controller's). Re-pin (another version or platform) with ``python benchmarks/perf/litellm_peer.py lock``;
make the venv alone with ``python benchmarks/perf/litellm_peer.py install``.

Nothing here runs unless asked: :func:`venv` only finds the venv, :func:`install` makes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from perfutil import BenchError, free_port, stop, wait_until

VERSION = "1.106.12"  # the newest litellm whose [proxy] extra resolves from the registry this project uses
REQUIREMENTS = Path(__file__).with_name("litellm-requirements.txt")
MASTER_KEY = "sk-claw-bench-peer"  # loopback only, a process that lives for one run: no secret
START_TIMEOUT_S = 180  # the proxy imports a great deal; a busy 2-core machine needs a while


def home() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "picocluster-claw" / f"litellm-{VERSION}"


def python_of(root: Path) -> Path:
    return root / "bin" / "python"


def venv() -> Path | None:
    """The venv's python when the venv is made (its ``.complete`` marker is written last), else None."""
    root = home()
    return python_of(root) if (root / ".complete").is_file() and python_of(root).is_file() else None


def install(log: Path | None = None) -> Path:
    """Make the venv (hash-checked); its python. BenchError with pip's last lines when it cannot be made."""
    found = venv()
    if found is not None:
        return found
    root = home()
    root.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(root)],
        [str(python_of(root)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
         "--no-deps", "--only-binary", ":all:", "-r", str(REQUIREMENTS)],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if log is not None:
            log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise BenchError(
                f"LiteLLM {VERSION} could not be installed in {root}: {' '.join(step[:4])}... failed:\n{tail}"
            )
    (root / ".complete").write_text(f"litellm[proxy]=={VERSION}\n")
    return python_of(root)


def lock() -> None:
    """Rewrite litellm-requirements.txt: litellm[proxy]==VERSION resolved (pip's dry-run report, nothing
    installed) and every package of the closure pinned with the hash of the file pip chose."""
    with tempfile.TemporaryDirectory(prefix="claw-litellm-lock-") as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--only-binary",
             ":all:", "--report", str(report), f"litellm[proxy]=={VERSION}"],
            check=True,
        )  # fmt: skip
        data = json.loads(report.read_text())
    lines = [
        f"# litellm[proxy]=={VERSION} and its closure, for benchmarks/perf/litellm_peer.py (the ThreadWeaver",
        "# benchmark's peer). Made by `python benchmarks/perf/litellm_peer.py lock` on "
        f"{data['environment']['platform_machine']}, Python {data['environment']['python_full_version']}.",
    ]
    for item in sorted(data["install"], key=lambda i: i["metadata"]["name"].lower()):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    REQUIREMENTS.write_text("\n".join(lines) + "\n")


@dataclass
class Peer:
    url: str  # the proxy's base URL, ending in /v1
    pid: int
    models: list[str]  # the model names it serves (each routed to the same name at the engine)
    headers: dict[str, str]


@contextlib.contextmanager
def proxy(python: Path, engine_url: str, models: list[str], tmp: Path) -> Iterator[Peer]:
    """LiteLLM's proxy on a free loopback port, ``models`` routed to ``engine_url`` (``.../v1``) as an
    OpenAI-compatible provider; no database, no telemetry, no callbacks."""
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {"model": f"openai/{model}", "api_base": engine_url, "api_key": "none"},
            }
            for model in models
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY, "disable_spend_logs": True},
    }
    path = tmp / "litellm.yml"
    path.write_text(yaml.safe_dump(config))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LITELLM", "DATABASE_URL", "OPENAI", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "PYTHON"))
    }
    # Its packaged model price map, not a fresh one from the network; no telemetry; errors only in its log.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", LITELLM_LOG="ERROR")
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    log = tmp / "litellm.log"
    with log.open("w") as stream:
        process = subprocess.Popen(
            [str(python), "-m", "litellm.proxy.proxy_cli", "--config", str(path), "--host", "127.0.0.1",
             "--port", str(port), "--num_workers", "1"],
            cwd=tmp, env=env, stdout=stream, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/health/liveliness", timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, process, "LiteLLM's proxy", log, timeout=START_TIMEOUT_S)
        yield Peer(f"{url}/v1", process.pid, models, {"Authorization": f"Bearer {MASTER_KEY}"})
    finally:
        stop(process, 10)


def main(argv: list[str]) -> int:
    if argv == ["lock"]:
        lock()
        print(f"{REQUIREMENTS}: litellm[proxy]=={VERSION} locked")
        return 0
    if argv == ["install"]:
        try:
            print(install())
        except BenchError as err:
            print(err, file=sys.stderr)
            return 1
        return 0
    print("usage: litellm_peer.py lock|install", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
