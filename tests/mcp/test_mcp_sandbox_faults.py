"""The sandbox under faults: nothing created by a read, the same-file check after open, every OS error reported
as a SandboxError (never swallowed), and no file descriptor left open, whatever the outcome."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from claw.mcp import sandbox as sandbox_mod
from claw.mcp.sandbox import (
    TMP_PREFIX,
    DirectoryNotEmptyError,
    NotADirError,
    NotAFileError,
    NotFoundError,
    RootProtectedError,
    RootUnavailableError,
    Sandbox,
    SandboxError,
    SandboxOSError,
    SpecialFileError,
    SymlinkError,
)

from tests.mcp.conftest import snapshot


def inside(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under the sandbox root, with content and times."""
    return snapshot(root, root / "\x00never")


def open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


OPERATIONS: dict[str, Callable[[Sandbox, str], object]] = {
    "read": lambda sb, p: sb.read_bytes(p),
    "stat": lambda sb, p: sb.stat(p),
    "list": lambda sb, p: sb.list_directory(p),
    "delete": lambda sb, p: sb.delete(p),
    "resolve": lambda sb, p: sb.resolve(p),
    "write": lambda sb, p: sb.write_bytes(p, b"x"),
    "mkdir": lambda sb, p: sb.make_directory(p),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("path", ["missing/deeper/x.txt", "docs/missing/x.txt", "missing/x"])
def test_no_operation_creates_missing_parents(layout, operation, path):
    before = inside(layout.root)
    with pytest.raises(NotFoundError):
        OPERATIONS[operation](layout.sandbox, path)
    assert inside(layout.root) == before


def test_only_make_directory_with_parents_creates_them(layout):
    assert layout.sandbox.make_directory("p/q/r", parents=True) is True
    assert (layout.root / "p" / "q" / "r").is_dir()
    assert layout.sandbox.make_directory("p/q/r", parents=True) is False
    assert oct((layout.root / "p").stat().st_mode & 0o777) == oct(0o755 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_regular_file_swapped_in_between_lstat_and_open_is_refused(layout, monkeypatch):
    sb = layout.sandbox
    real = Sandbox._lstat
    other = layout.root / "other.txt"
    other.write_text("swapped in\n")

    def lstat_then_swap(self, dir_fd, name):
        result = real(self, dir_fd, name)
        if name == "victim.txt":
            other.replace(layout.root / "victim.txt")  # another regular file, same name
        return result

    monkeypatch.setattr(Sandbox, "_lstat", lstat_then_swap)
    fds = open_fds()
    with pytest.raises(SandboxError, match="changed while it was being opened"):
        sb.read_bytes("victim.txt")
    assert open_fds() == fds


def test_a_file_that_became_a_directory_after_open_is_refused(layout, monkeypatch):
    real_fstat = os.fstat
    st_dir = (layout.root / "docs").stat()
    st_file = (layout.root / "victim.txt").stat()

    def fstat(fd):
        result = real_fstat(fd)
        if (result.st_dev, result.st_ino) == (st_file.st_dev, st_file.st_ino):
            fields = list(result)
            fields[0] = st_dir.st_mode
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(sandbox_mod.os, "fstat", fstat)
    with pytest.raises(NotAFileError):
        layout.sandbox.read_bytes("victim.txt")


def test_a_file_grown_past_the_limit_after_fstat_is_refused(layout, monkeypatch):
    (layout.root / "small.txt").write_bytes(b"x" * 10)
    real_read = os.read

    def read(fd, n):
        return real_read(fd, n) + b"y" * 100

    monkeypatch.setattr(sandbox_mod.os, "read", read)
    with pytest.raises(sandbox_mod.TooLargeError, match="over the read limit"):
        layout.sandbox.read_bytes("small.txt")


def test_reads_are_chunked_and_complete(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    data = bytes(range(256)) * 9000  # over one 1 MiB chunk
    (root / "big.bin").write_bytes(data)
    sizes = []
    real_read = os.read

    def read(fd, n):
        sizes.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(sandbox_mod.os, "read", read)
    sb = Sandbox(root, len(data), 10)
    assert sb.read_bytes("big.bin") == data
    assert sizes[0] == 1 << 20
    assert max(sizes) <= 1 << 20


def _fail(exc: OSError):
    def raiser(*args, **kwargs):
        raise exc

    return raiser


def eacces() -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize(
    ("target", "call", "expected", "message"),
    [
        ("mkdir", lambda sb: sb.make_directory("p/q", parents=True), SandboxOSError, "cannot create directory 'p/q'"),
        ("mkdir", lambda sb: sb.make_directory("newdir"), NotFoundError, "'newdir' does not exist"),
        ("rmdir", lambda sb: sb.delete("docs"), SandboxOSError, "cannot access 'docs'"),
        ("unlink", lambda sb: sb.delete("victim.txt"), SandboxOSError, "cannot access 'victim.txt'"),
        ("replace", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, "cannot access 'victim.txt'"),
        ("fsync", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, "cannot access 'victim.txt'"),
        ("write", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, "cannot access 'victim.txt'"),
        ("fchmod", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, "cannot access 'victim.txt'"),
    ],
)
def test_os_errors_are_reported_never_swallowed(layout, monkeypatch, target, call, expected, message):
    fds = open_fds()
    before = (layout.root / "victim.txt").read_bytes()
    monkeypatch.setattr(sandbox_mod.os, target, _fail(eacces()))
    with pytest.raises(expected) as caught:
        call(layout.sandbox)
    monkeypatch.undo()
    assert message in str(caught.value)
    assert "Permission denied" in str(caught.value) or expected is NotFoundError
    assert open_fds() == fds
    assert (layout.root / "victim.txt").read_bytes() == before
    assert not [p for p in layout.root.rglob("*") if p.name.startswith(TMP_PREFIX)]


def test_a_failing_temp_file_open_is_reported(layout, monkeypatch):
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if isinstance(path, str) and path.startswith(TMP_PREFIX):
            raise eacces()
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(sandbox_mod.os, "open", fake_open)
    fds = open_fds()
    with pytest.raises(SandboxOSError, match=r"cannot write 'victim.txt': Permission denied"):
        layout.sandbox.write_bytes("victim.txt", b"new")
    assert open_fds() == fds


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda sb: sb.read_bytes("victim.txt"), "cannot access 'victim.txt'"),
        (lambda sb: sb.stat("victim.txt"), "cannot access 'victim.txt'"),
        (lambda sb: sb.delete("victim.txt"), "cannot access 'victim.txt'"),
        (lambda sb: sb.write_bytes("victim.txt", b"x"), "cannot access 'victim.txt'"),
    ],
)
def test_a_failing_lstat_is_reported(layout, monkeypatch, call, message):
    monkeypatch.setattr(Sandbox, "_lstat", _fail(eacces()))
    fds = open_fds()
    with pytest.raises(SandboxOSError, match=message):
        call(layout.sandbox)
    assert open_fds() == fds


def test_an_open_failure_is_explained_by_what_is_there(layout, monkeypatch):
    os.mkfifo(layout.root / "fifo")
    (layout.root / "link").symlink_to("victim.txt")
    (layout.root / "dirlink").symlink_to("docs")
    sb = layout.sandbox
    with pytest.raises(SymlinkError, match="goes through the symlink 'dirlink'"):
        sb.list_directory("dirlink")
    with pytest.raises(NotADirError, match=r"'victim.txt' is not a directory"):
        sb.list_directory("victim.txt")
    with pytest.raises(NotADirError):
        sb.read_bytes("victim.txt/x")
    with pytest.raises(SpecialFileError):
        sb.read_bytes("fifo")
    with pytest.raises(SymlinkError):
        sb.read_bytes("link")
    # An open that fails on something that looks fine is reported with the OS's reason.
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if path == "victim.txt":
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(sandbox_mod.os, "open", fake_open)
    with pytest.raises(SandboxOSError, match=r"cannot access 'victim.txt': Input/output error"):
        sb.read_bytes("victim.txt")


def test_delete_of_a_non_empty_directory_is_refused(layout, monkeypatch):
    with pytest.raises(DirectoryNotEmptyError):
        layout.sandbox.delete("docs")
    monkeypatch.setattr(sandbox_mod.os, "rmdir", _fail(OSError(errno.EEXIST, "File exists")))
    (layout.root / "empty").mkdir()
    with pytest.raises(DirectoryNotEmptyError, match=r"'empty' is a directory that is not empty"):
        layout.sandbox.delete("empty")


def test_a_missing_or_replaced_root_is_refused_without_leaking(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    sb = Sandbox(root, 10, 10)
    fds = open_fds()
    root.rename(tmp_path / "moved")
    root.mkdir()
    with pytest.raises(RootUnavailableError, match="was replaced"):
        sb.list_directory("")
    assert open_fds() == fds
    root.rmdir()
    with pytest.raises(RootUnavailableError, match="missing"):
        sb.stat("")
    assert open_fds() == fds


@pytest.mark.parametrize(
    "call",
    [
        lambda sb: sb.read_bytes("docs/a.txt"),
        lambda sb: sb.read_text("docs/a.txt"),
        lambda sb: sb.write_bytes("docs/new.txt", b"n"),
        lambda sb: sb.list_directory("docs"),
        lambda sb: sb.stat("docs/a.txt"),
        lambda sb: sb.stat(""),
        lambda sb: sb.resolve("docs/a.txt"),
        lambda sb: sb.make_directory("docs/d1/d2", parents=True),
        lambda sb: sb.delete("victim.txt"),
        lambda sb: sb.read_bytes("docs"),
        lambda sb: sb.read_bytes("nope/x"),
        lambda sb: sb.write_bytes("", b"x"),
        lambda sb: sb.delete("docs"),
        lambda sb: sb.make_directory("victim.txt"),
    ],
)
def test_no_descriptor_is_left_open(layout, call):
    fds = open_fds()
    with contextlib.suppress(SandboxError):
        call(layout.sandbox)
    assert open_fds() == fds


def test_the_root_itself_is_protected(layout):
    for call in (
        lambda: layout.sandbox.write_bytes("", b"x"),
        lambda: layout.sandbox.delete("."),
        lambda: layout.sandbox.read_bytes(str(layout.root)),
        lambda: layout.sandbox.make_directory(""),
    ):
        with pytest.raises(RootProtectedError):
            call()
