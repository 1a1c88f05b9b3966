"""Positive behaviour of the files sandbox: round trips, atomic writes, listings, deletes and exact size limits."""

from __future__ import annotations

import contextlib
import os
import re

import pytest
from claw.mcp import sandbox as sandbox_mod
from claw.mcp.sandbox import (
    TMP_PREFIX,
    AlreadyExistsError,
    DirectoryNotEmptyError,
    InvalidPathError,
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
    os.mkfifo(layout.root / "docs" / "pipe")
    entries, truncated = layout.sandbox.list_directory("docs")
    assert truncated is False
    assert [(e.name, e.kind, e.size) for e in entries] == [
        ("a.txt", "file", len("inside a\n")),
        ("link", "symlink", 0),
        ("pipe", "other", 0),
    ]
    # The root is the default; only regular files have a size.
    assert layout.sandbox.list_directory() == (
        [sandbox_mod.Entry("docs", "directory", 0), sandbox_mod.Entry("victim.txt", "file", len("victim\n"))],
        False,
    )


def test_an_entry_removed_while_listing_is_listed_as_other(layout, monkeypatch):
    real_scandir = os.scandir

    @contextlib.contextmanager
    def vanishing(fd: int):
        with real_scandir(fd) as scan:

            def items():
                for item in scan:
                    if item.name == "victim.txt":
                        os.unlink(item.name, dir_fd=fd)  # gone before the listing looks at it
                    yield item

            yield items()

    monkeypatch.setattr(sandbox_mod.os, "scandir", vanishing)
    entries, _ = layout.sandbox.list_directory("")
    assert entries == [sandbox_mod.Entry("docs", "directory", 0), sandbox_mod.Entry("victim.txt", "other", 0)]


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


def test_stat_reports_the_entry_itself(layout):
    target = layout.root / "docs" / "a.txt"
    target.chmod(0o640)
    os.utime(target, (1_700_000_000.5, 1_700_000_000.5))
    assert layout.sandbox.stat("docs/a.txt") == sandbox_mod.Info(
        path="docs/a.txt", kind="file", size=len("inside a\n"), mtime=1_700_000_000.5, mode="0o640"
    )
    os.utime(layout.root / "docs", (1_600_000_000, 1_600_000_000))
    # A directory's size is the filesystem's business, not the model's: it is reported as 0.
    assert layout.sandbox.stat(f"{layout.root}/docs/") == sandbox_mod.Info(
        path="docs", kind="directory", size=0, mtime=1_600_000_000.0, mode="0o755"
    )


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


@pytest.mark.parametrize(("max_read", "max_write"), [(0, 10), (10, 0), (-1, -1)])
def test_limits_must_be_positive(tmp_path, max_read, max_write):
    with pytest.raises(ValueError) as caught:
        Sandbox(tmp_path, max_read, max_write)
    assert str(caught.value) == "size limits must be positive"


def test_limits_of_one_byte_are_enough(tmp_path):
    sb = Sandbox(tmp_path, 1, 1)
    assert sb.write_bytes("one", b"1") == 1
    assert sb.read_bytes("one") == b"1"


def test_root_must_exist(tmp_path):
    with pytest.raises(OSError):
        Sandbox(tmp_path / "missing", 10, 10)


def test_root_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError) as caught:
        Sandbox(tmp_path / "file", 10, 10)
    assert str(caught.value) == f"sandbox root {tmp_path / 'file'} is not a directory"


def test_show_quotes_and_cuts_long_paths():
    assert sandbox_mod.show("a\x00b") == "'a\\x00b'"
    assert sandbox_mod.show(5) == "5"
    exact = "a" * 198  # quoted: 200 characters, kept whole
    assert sandbox_mod.show(exact) == f"'{exact}'"
    longer = "a" * 199  # quoted: 201 characters, cut to 200 and marked
    assert sandbox_mod.show(longer) == "'" + "a" * 199 + "...'"
    assert sandbox_mod.show("b" * 5000) == "'" + "b" * 199 + "...'"


def test_the_longest_path_and_name_are_accepted(layout):
    longest = "./" * 2043 + "victim.txt"
    assert len(longest.encode()) == sandbox_mod.MAX_PATH_BYTES
    assert layout.sandbox.read_text(longest) == "victim\n"
    with pytest.raises(InvalidPathError):
        layout.sandbox.read_text("./" + longest)
    name = "n" * sandbox_mod.MAX_NAME_BYTES
    assert layout.sandbox.write_bytes(name, b"long name") == len(b"long name")
    assert layout.sandbox.read_bytes(name) == b"long name"


def test_resolve_accepts_a_path_that_does_not_exist_yet(layout):
    assert layout.sandbox.resolve("docs/new.txt") == layout.root / "docs" / "new.txt"
    assert layout.sandbox.resolve("victim.txt") == layout.root / "victim.txt"
    assert layout.sandbox.resolve("") == layout.root


@pytest.fixture
def no_umask():
    """Umask 0, so the permission bits the sandbox asks for are the ones that end up on disk."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode_of(path) -> str:
    return oct(path.stat().st_mode & 0o7777)


def test_new_files_and_directories_get_fixed_modes(layout, no_umask):
    sb = layout.sandbox
    sb.write_bytes("new.txt", b"n")
    assert mode_of(layout.root / "new.txt") == "0o644"
    assert sb.make_directory("made") is True
    assert mode_of(layout.root / "made") == "0o755"
    assert sb.make_directory("p/q/r", parents=True) is True
    assert [mode_of(layout.root / sub) for sub in ("p", "p/q", "p/q/r")] == ["0o755"] * 3


@pytest.mark.parametrize("mode", [0o000, 0o600, 0o755])
def test_an_overwrite_keeps_any_mode_even_none(layout, no_umask, mode):
    target = layout.root / "victim.txt"
    target.chmod(mode)
    layout.sandbox.write_bytes("victim.txt", b"v2")
    assert mode_of(target) == oct(mode)
    assert target.read_bytes() == b"v2"


def test_temporary_files_have_a_fresh_random_name(layout, monkeypatch):
    names: list[str] = []
    real_open = os.open

    def recording(path, flags, *args, **kwargs):
        if isinstance(path, str) and path.startswith(TMP_PREFIX):
            names.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(sandbox_mod.os, "open", recording)
    layout.sandbox.write_bytes("a.txt", b"1")
    layout.sandbox.write_bytes("a.txt", b"2")
    assert len(names) == 2
    assert names[0] != names[1]
    assert all(re.fullmatch(r"\.claw-tmp-[0-9a-f]{16}", name) for name in names)
