"""Fixtures for the MCP server tests: a sandbox next to an "outside" tree that must never change."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from claw.mcp.sandbox import Sandbox

MAX_READ = 64
MAX_WRITE = 64
SECRET = b"outside secret\n"


@dataclass
class Layout:
    base: Path
    root: Path
    outside: Path
    evil: Path
    sandbox: Sandbox


def snapshot(base: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under base except the sandbox root: type, content or link target, mode and mtime."""
    result: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        here = Path(dirpath)
        if here == base and skip.name in dirnames:
            dirnames.remove(skip.name)
        for name in [*dirnames, *filenames]:
            path = here / name
            st = path.lstat()
            if path.is_symlink():
                detail: object = ("link", str(path.readlink()))
            elif path.is_file():
                detail = ("file", path.read_bytes())
            else:
                detail = ("dir-or-special",)
            result[str(path.relative_to(base))] = (detail, st.st_mode, st.st_mtime_ns, st.st_size)
        result[str(here.relative_to(base)) + "/"] = (here.lstat().st_mtime_ns,)
    return result


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    base = tmp_path
    root = base / "sandbox"
    outside = base / "outside"
    evil = base / "sandbox-evil"
    for directory in (root / "docs", outside / "sub", evil):
        directory.mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("inside a\n")
    (root / "victim.txt").write_text("victim\n")
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "a.txt").write_bytes(SECRET)
    (outside / "sub" / "deep.txt").write_bytes(SECRET)
    (evil / "file.txt").write_bytes(SECRET)
    return Layout(base, root, outside, evil, Sandbox(root, MAX_READ, MAX_WRITE))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def outside_snapshot(layout: Layout):
    """Call it to snapshot everything outside the sandbox root (used before and after each escape attempt)."""
    return lambda: snapshot(layout.base, layout.root)
