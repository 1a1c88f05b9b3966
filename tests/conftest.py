"""Shared fixtures: the repository root, a runner for ansible-playbook on the controller, and what tests in several
folders run against: a closed port, a real LED daemon, the fake engines, the simulated Jetson tree and the crush
exporter serving it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.doubles.engine import FakeLlamaCpp, FakeOllama

REPO = Path(__file__).resolve().parent.parent
JETSON_ROOT = REPO / "tests" / "fixtures" / "jetson_sysfs"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def run_playbook(tmp_path: Path):
    """Run a one-play playbook against localhost in check mode; nothing on the host changes."""

    def run(play: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess[str]:
        import json

        playbook = tmp_path / "play.yml"
        playbook.write_text(play)
        # The appliance-wide defaults the roles derive from, beside the play as beside the repository's playbooks.
        if not (tmp_path / "group_vars").exists():
            (tmp_path / "group_vars").symlink_to(REPO / "playbooks" / "group_vars")
        command = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i", "localhost,", "-c", "local", "--check", str(playbook),
            "-e", f"ansible_python_interpreter={sys.executable}",
        ]  # fmt: skip
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    return run


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    from tests.doubles.http import closed_port_url

    return closed_port_url()


@pytest.fixture
def led_socket() -> Iterator[Path]:
    """A real LED daemon (simulated backend) on its own event loop in a thread, so sync clients can call it."""
    from claw.leds.backends import SimulatedBackend
    from claw.leds.daemon import LedDaemon, LedService
    from claw.leds.state import LedState

    directory = Path(tempfile.mkdtemp(prefix="leds-", dir="/tmp"))  # short: unix socket paths are limited
    backend = SimulatedBackend()
    daemon = LedDaemon(LedService(LedState(), backend.name), backend, directory / "leds.sock")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(daemon.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(5), "LED daemon did not start"
    yield daemon.socket_path
    asyncio.run_coroutine_threadsafe(daemon.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    """A fake Ollama (tests/doubles/engine.py) on a real socket."""
    from tests.doubles.engine import FakeOllama
    from tests.doubles.http import serve

    with serve(FakeOllama()) as fake:
        yield fake


@pytest.fixture
def llamacpp() -> Iterator[FakeLlamaCpp]:
    """A fake llama.cpp server (tests/doubles/engine.py) on a real socket."""
    from tests.doubles.engine import FakeLlamaCpp
    from tests.doubles.http import serve

    with serve(FakeLlamaCpp()) as fake:
        yield fake


@pytest.fixture
def jetson_root() -> Path:
    """The simulated Jetson Orin sysfs tree (read only)."""
    assert JETSON_ROOT.is_dir()
    return JETSON_ROOT


@pytest.fixture
def crush_exporter(jetson_root: Path) -> Iterator[str]:
    """The real crush exporter's collector (no engine) on the Jetson tree, served on 127.0.0.1; its base URL."""
    from claw.exporters.crush import CrushCollector
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(CrushCollector(jetson_root, engine=None))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
