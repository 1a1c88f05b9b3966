"""Fixtures for tests that drive claw with real third-party clients: the pinned MCP Inspector CLI from npm.

The Inspector is pinned in inspector/package.json (an exact version) and inspector/package-lock.json
(lockfileVersion 3: an exact version and a sha512 ``integrity`` for every package). The lock carries no
``resolved`` URLs, so no registry host is written into the repository: ``npm ci`` resolves each package
against the registry npm is configured with (its own config: ~/.npmrc, /etc/npmrc, the environment) and
refuses any tarball whose checksum differs from the lock.

It is installed once per lock into a cache outside the repository,
``${XDG_CACHE_HOME:-~/.cache}/picocluster-claw/inspector/<sha256 of package.json + lock>/``, and reused by later
sessions; a changed pin gets a new directory. The install goes to a temporary sibling first and is renamed into
place, so concurrent sessions do not see a half-installed tree.

To re-pin, in tests/external/inspector: set the exact version in package.json (its ``engines.node`` must admit
the Node.js in use), then ``npm install --package-lock-only --ignore-scripts``, then delete every ``"resolved"``
field from package-lock.json (npm leaves them out itself when ``omit-lockfile-registry-resolved`` is set).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PINS = Path(__file__).resolve().parent / "inspector"
PACKAGE = "@modelcontextprotocol/inspector"
PIN_FILES = ("package.json", "package-lock.json")
NODE_HELP = (
    "the MCP Inspector tests need Node.js >= 20 with npm (lockfileVersion 3) on PATH; this repository does not "
    "install them (on this controller they come from the nodejs apt package, /usr/bin/node and /usr/bin/npm): "
    "install Node.js 20 or newer, e.g. `apt-get install nodejs` from a repository that carries 20+"
)


@dataclass(frozen=True)
class Inspector:
    """The installed Inspector: ``node`` and the ``mcp-inspector`` entry point to run with it."""

    node: str
    entry: Path
    version: str
    home: Path

    def command(self, *args: str) -> list[str]:
        return [self.node, str(self.entry), *args]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "picocluster-claw" / "inspector"


def _pinned_version() -> str:
    version = json.loads((PINS / "package.json").read_text(encoding="utf-8"))["dependencies"][PACKAGE]
    assert version[:1].isdigit(), f"{PINS / 'package.json'}: {PACKAGE} must be an exact version, not {version!r}"
    return version


def _installed_version(home: Path) -> str | None:
    try:
        manifest = home / "node_modules" / PACKAGE / "package.json"
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _install(npm: str, target: Path) -> None:
    """``npm ci`` the pinned tree into a temporary sibling of target, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        for name in PIN_FILES:
            shutil.copyfile(PINS / name, work / name)
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"]
        try:
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(command)}` in {work} took over 600 s")
        if done.returncode != 0:
            pytest.fail(
                f"`{' '.join(command)}` for the pinned MCP Inspector failed ({done.returncode}); it uses npm's "
                f"configured registry (`npm config get registry`):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        with contextlib.suppress(OSError):  # another session renamed its copy into place first: use that one
            work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def inspector() -> Inspector:
    """The pinned MCP Inspector, installed into the per-user cache on first use and reused afterwards."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"{'node' if node is None else 'npm'} is not on PATH: {NODE_HELP}")
    probe = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    major = probe.stdout.strip().lstrip("v").split(".")[0]
    if probe.returncode != 0 or not major.isdigit() or int(major) < 20:
        pytest.fail(f"{node} --version says {probe.stdout.strip() or probe.stderr.strip()!r}: {NODE_HELP}")

    pinned = _pinned_version()
    digest = hashlib.sha256()
    for name in PIN_FILES:
        digest.update((PINS / name).read_bytes())
    home = _cache_root() / digest.hexdigest()[:16]
    entry = home / "node_modules" / ".bin" / "mcp-inspector"

    if _installed_version(home) != pinned or not entry.is_file():
        if home.exists():  # an interrupted or tampered install: start over
            shutil.rmtree(home)
        _install(npm, home)
    installed = _installed_version(home)
    assert installed == pinned, f"{home}: installed {PACKAGE} is {installed}, the pin is {pinned}"
    assert entry.is_file(), f"{home}: {entry} is missing after npm ci"
    return Inspector(node=node, entry=entry, version=installed, home=home)
