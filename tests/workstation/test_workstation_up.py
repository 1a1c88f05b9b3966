"""The workstation install brought up for real: ``playbooks/workstation.yml -e workstation_platform=linux`` as CI runs
it (root, rootful Podman, podman-compose), on a local Debian bookworm base with Python 3.11 standing in for the
``python:3.11-slim-bookworm`` image no registry here serves.

The play gathers the bundle for this machine, builds the claw apps, OpenClaw and llama.cpp images from it (the
engine from the wheel role llamacpp built and cached: molecule-default runs first in ``make test``), and brings the
project up with the Gemma model. Then, as a user would: a real message answered through ThreadWeaver; ``compose
down`` and the same command again keep the thread; an upgrade to a changed claw version (a checkout whose
pyproject says so, as after a ``git pull``) builds a new image and keeps it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/picocluster-claw-workstation-base:bookworm"
# What python:3.11-slim-bookworm gives the Dockerfiles: Python 3.11 with venv; libgomp1 is installed by the engine's
# Dockerfile from Debian when the base lacks it, which needs a network the builds here do not have.
BASE_PACKAGES = ["python3", "python3-venv", "libgomp1"]
SERVICE_UID = 10001
WIRING = yaml.safe_load((REPO / "playbooks/group_vars/all.yml").read_text())
PORT = WIRING["appliance_services_defaults"]["threadweaver"]["port"]
MODEL = WIRING["crush_models"][0]["name"]
COMPOSE = str(Path(sys.executable).with_name("podman-compose"))
FILES = ["-f", "compose.yaml", "-f", "compose.linux.yaml"]

pytestmark = [pytest.mark.compose, pytest.mark.ansible]


def _ansible(playbook: Path, extra: dict, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    # The controller is the host: its modules run with this Python (as `make host` and the workstation play do).
    extra = {"ansible_python_interpreter": sys.executable, **extra}
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        "localhost,",
        str(playbook),
        "-e",
        json.dumps(extra),
    ]
    env = {**os.environ, "ANSIBLE_CONFIG": str(playbook.parents[1] / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        command, cwd=playbook.parents[1], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _up(source: Path, project: Path) -> None:
    result = _ansible(
        source / "playbooks" / "workstation.yml",
        {
            "workstation_platform": "linux", "workstation_project_dir": str(project),
            "workstation_uid": SERVICE_UID, "workstation_gid": SERVICE_UID,
            "workstation_compose_command": [COMPOSE],
            "workstation_base_images": {"python": BASE_IMAGE, "debian": BASE_IMAGE},
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def _compose(project: Path, *args: str) -> str:
    # The files named, as the play does: podman-compose does not read COMPOSE_FILE from the project's .env.
    result = subprocess.run(
        [COMPOSE, *FILES, *args], cwd=project, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.fail("the bring-up needs root and Podman, as in CI (make workstation-test)")
    cached = Path.home() / ".cache/picocluster-claw/wheels/llama-cpp-python"
    assert list(cached.glob("*/debian12-*-py311-*/*.whl")), (
        f"no llama-cpp-python wheel in {cached}: run molecule-default first"
    )
    base = _ansible(
        REPO / "playbooks" / "demo.yml",
        {"demo_cluster_nodes": [], "demo_cluster_image": BASE_IMAGE, "demo_cluster_image_packages": BASE_PACKAGES},
    )
    assert base.returncode == 0, base.stdout[-4000:] + base.stderr[-2000:]
    root = tmp_path_factory.mktemp("workstation-up")
    project = root / "compose"
    _up(REPO, project)
    try:
        yield project
    finally:
        subprocess.run(
            [COMPOSE, *FILES, "down", "--volumes"], cwd=project, capture_output=True, timeout=300, check=False
        )


@contextlib.contextmanager
def _console(project: Path) -> Iterator[httpx.Client]:
    password = (project / "secrets" / "threadweaver_password").read_text().strip()
    with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=120) as client:
        login = client.post("/login", json={"password": password})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        yield client


def _wait_healthy(timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"ThreadWeaver did not come back on port {PORT}")


@pytest.fixture(scope="module")
def thread(project: Path) -> dict:
    with _console(project) as console:
        providers = [provider["name"] for provider in console.get("/providers").json()]
        assert "crush" in providers, providers
        created = console.post("/threads", json={"provider": "crush", "model": MODEL, "title": "workstation"})
        assert created.status_code == 201, created.text
        turn = console.post(f"/threads/{created.json()['id']}/messages", json={"content": "Say hello."})
        assert turn.status_code == 200, turn.text
        reply = turn.json()["reply"]
        assert reply["role"] == "assistant" and reply["provider"] == "crush" and reply["model"] == MODEL
        assert reply["content"].strip() and reply["tokens_out"] > 0
        return {"id": created.json()["id"], "reply": reply["content"]}


def _stored_reply(project: Path, thread_id: str) -> str:
    with _console(project) as console:
        found = console.get(f"/threads/{thread_id}")
        assert found.status_code == 200, found.text
        return [m["content"] for m in found.json()["messages"] if m["role"] == "assistant"][-1]


def test_every_service_runs_as_its_uid_from_the_bundle_built_images(project: Path):
    services = json.loads(_compose(project, "ps", "--format", "json"))
    names = {service["Labels"]["com.docker.compose.service"]: service for service in services}
    assert {"leds", "leds-watcher", "mcp", "threadweaver", "openclaw", "engine"} <= set(names), sorted(names)
    for name, service in names.items():
        assert service["State"] == "running", (name, service["State"])
        user = subprocess.run(
            ["podman", "exec", service["Names"][0], "id", "-u"], capture_output=True, text=True, check=True
        )
        assert user.stdout.strip() == str(SERVICE_UID), name


def test_a_real_message_is_answered_through_threadweaver(thread: dict):
    assert thread["reply"].strip()


def test_the_console_shows_the_simulated_strips_state(project: Path):
    # No strip on a workstation: the console's status panel shows the simulated strip's state (issue #21, item 4).
    with _console(project) as console:
        status = console.get("/status")
        assert status.status_code == 200, status.text
        leds = status.json()["leds"]
        assert leds is not None and leds["state"], status.json()


def test_compose_down_and_the_same_command_keep_the_threads(project: Path, thread: dict):
    _compose(project, "down")
    assert json.loads(_compose(project, "ps", "--format", "json") or "[]") == [], "down left containers"
    _up(REPO, project)
    _wait_healthy()
    assert _stored_reply(project, thread["id"]) == thread["reply"]


def test_an_upgrade_to_a_changed_version_keeps_the_threads(project: Path, thread: dict, tmp_path: Path):
    # A checkout of this tree whose claw version moved, as after a `git pull`: the play builds a new claw image.
    checkout = tmp_path / "checkout"
    shutil.copytree(
        REPO, checkout, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "build", "dist", "__pycache__")
    )
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('\nversion = "', '\nversion = "9', 1))
    version = next(line for line in pyproject.read_text().splitlines() if line.startswith("version = ")).split('"')[1]
    _up(checkout, project)
    _wait_healthy()
    images = _compose(project, "images")
    assert version in images, images
    assert _stored_reply(project, thread["id"]) == thread["reply"]
