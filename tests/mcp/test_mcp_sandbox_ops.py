"""Positive behaviour of the files sandbox: round trips, atomic writes, listings, deletes and exact size limits."""

from __future__ import annotations

import os

import pytest
from claw.mcp import sandbox as sandbox_mod
from claw.mcp.sandbox import (
    TMP_PREFIX,
    AlreadyExistsError,
    DirectoryNotEmptyError,
    NotFoundError,
    NotTextError,
    Sandbox,
    SandboxError,
    TooLargeError,
)


def leftovers(root) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.startswith(TMP_PREFIX)]


def test_write_read_round_trip(layout):
    sb = layout.sandbox
    assert sb.write_text("docs/note.txt", "héllo\n") == len("héllo\n".encode())
    assert sb.read_text("docs/note.txt") == "héllo\n"
    assert (layout.root / "docs" / "note.txt").read_text() == "héllo\n"


def test_overwrite_replaces_content_and_keeps_mode(layout):
    target = layout.root / "docs" / "a.txt"
    target.chmod(0o600)
    layout.sandbox.write_bytes("docs/a.txt", b"v2")
    assert target.read_bytes() == b"v2"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_atomic_write_leaves_no_temp_files(layout):
    for i in range(5):
        layout.sandbox.write_bytes(f"f{i}.txt", b"x" * i)
        layout.sandbox.write_bytes(f"f{i}.txt", b"y" * i)
    assert leftovers(layout.root) == []


def test_failed_write_keeps_old_content_and_no_temp(layout, monkeypatch):
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sandbox_mod.os, "fsync", broken_fsync)
    with pytest.raises(SandboxError, match=r"victim\.txt"):
        layout.sandbox.write_bytes("victim.txt", b"half")
    assert (layout.root / "victim.txt").read_text() == "victim\n"
    assert leftovers(layout.root) == []


def test_absolute_path_inside_root_is_accepted(layout):
    assert layout.sandbox.read_text(f"{layout.root}/docs/a.txt") == "inside a\n"
    assert layout.sandbox.resolve(f"{layout.root}//docs/./a.txt") == layout.root / "docs" / "a.txt"


def test_list_directory(layout):
    (layout.root / "docs" / "link").symlink_to(layout.outside)
    entries, truncated = layout.sandbox.list_directory("docs")
    assert not truncated
    assert [(e.name, e.kind) for e in entries] == [("a.txt", "file"), ("link", "symlink")]
    root_entries, _ = layout.sandbox.list_directory("")
    assert {e.name: e.kind for e in root_entries} == {"docs": "directory", "victim.txt": "file"}
    assert next(e for e in root_entries if e.name == "victim.txt").size == len("victim\n")


def test_list_is_bounded(layout, monkeypatch):
    monkeypatch.setattr(sandbox_mod, "MAX_LIST_ENTRIES", 3)
    for i in range(5):
        (layout.root / f"n{i}").touch()
    entries, truncated = layout.sandbox.list_directory("")
    assert len(entries) == 3
    assert truncated


def test_delete_file_and_empty_directory(layout):
    sb = layout.sandbox
    assert sb.delete("docs/a.txt") == "file"
    assert not (layout.root / "docs" / "a.txt").exists()
    assert sb.delete("docs") == "directory"
    assert not (layout.root / "docs").exists()
    with pytest.raises(NotFoundError, match="docs"):
        sb.delete("docs")


def test_delete_non_empty_directory_is_refused(layout):
    with pytest.raises(DirectoryNotEmptyError, match="docs"):
        layout.sandbox.delete("docs")
    assert (layout.root / "docs" / "a.txt").exists()


def test_make_directory_is_idempotent_and_makes_parents(layout):
    sb = layout.sandbox
    assert sb.make_directory("new") is True
    assert sb.make_directory("new") is False
    assert sb.make_directory("x/y/z", parents=True) is True
    assert (layout.root / "x" / "y" / "z").is_dir()
    with pytest.raises(NotFoundError):
        sb.make_directory("p/q")
    with pytest.raises(AlreadyExistsError):
        sb.make_directory("victim.txt")


def test_stat(layout):
    info = layout.sandbox.stat("victim.txt")
    assert (info.path, info.kind, info.size) == ("victim.txt", "file", len("victim\n"))
    assert layout.sandbox.stat("").kind == "directory"
    assert layout.sandbox.stat(".").path == "."


@pytest.mark.parametrize("delta", [-1, 0])
def test_read_limit_boundary_is_allowed(layout, delta):
    size = layout.sandbox.max_read_bytes + delta
    (layout.root / "edge.bin").write_bytes(b"r" * size)
    assert len(layout.sandbox.read_bytes("edge.bin")) == size


def test_read_limit_plus_one_is_refused(layout):
    (layout.root / "edge.bin").write_bytes(b"r" * (layout.sandbox.max_read_bytes + 1))
    with pytest.raises(TooLargeError, match=r"edge\.bin"):
        layout.sandbox.read_bytes("edge.bin")


@pytest.mark.parametrize("delta", [-1, 0])
def test_write_limit_boundary_is_allowed(layout, delta):
    size = layout.sandbox.max_write_bytes + delta
    assert layout.sandbox.write_bytes("edge.bin", b"w" * size) == size
    assert (layout.root / "edge.bin").stat().st_size == size


def test_write_limit_plus_one_is_refused_and_nothing_written(layout):
    with pytest.raises(TooLargeError, match=r"edge\.bin"):
        layout.sandbox.write_bytes("edge.bin", b"w" * (layout.sandbox.max_write_bytes + 1))
    assert not (layout.root / "edge.bin").exists()
    assert leftovers(layout.root) == []


def test_write_limit_counts_utf8_bytes(layout):
    text = "é" * (layout.sandbox.max_write_bytes // 2 + 1)  # fewer characters than the limit, more bytes
    with pytest.raises(TooLargeError):
        layout.sandbox.write_text("u.txt", text)


def test_file_that_grows_past_the_limit_after_fstat_is_refused(layout, monkeypatch):
    (layout.root / "grow.bin").write_bytes(b"g")
    real_fstat = os.fstat

    def grow_then_fstat(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        (layout.root / "grow.bin").write_bytes(b"g" * (layout.sandbox.max_read_bytes + 10))
        return result

    monkeypatch.setattr(sandbox_mod.os, "fstat", grow_then_fstat)
    # _open_root also uses fstat; the growth only matters for the leaf, which is read with a bounded loop.
    with pytest.raises(TooLargeError):
        layout.sandbox.read_bytes("grow.bin")


def test_binary_file_is_not_text(layout):
    (layout.root / "bin.dat").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NotTextError, match=r"bin\.dat"):
        layout.sandbox.read_text("bin.dat")


def test_limits_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        Sandbox(tmp_path, 0, 10)


def test_root_must_exist(tmp_path):
    with pytest.raises(OSError):
        Sandbox(tmp_path / "missing", 10, 10)
