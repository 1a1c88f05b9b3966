"""The sandbox under faults: nothing created by a read, the same-file check after open, every OS error reported
as a SandboxError (never swallowed), and no file descriptor left open, whatever the outcome."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
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
    with pytest.raises(SandboxError) as caught:
        sb.read_bytes("victim.txt")
    assert str(caught.value) == "'victim.txt' changed while it was being opened; try again"
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
    with pytest.raises(NotAFileError) as caught:
        layout.sandbox.read_bytes("victim.txt")
    assert str(caught.value) == "'victim.txt' is a directory, not a file; use list_directory"


def test_a_file_grown_past_the_limit_after_fstat_is_refused(layout, monkeypatch):
    (layout.root / "small.txt").write_bytes(b"x" * 10)
    real_read = os.read

    def read(fd, n):
        return real_read(fd, n) + b"y" * 100

    monkeypatch.setattr(sandbox_mod.os, "read", read)
    with pytest.raises(sandbox_mod.TooLargeError) as caught:
        layout.sandbox.read_bytes("small.txt")
    assert str(caught.value) == "'small.txt' is over the read limit of 64 bytes"


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


def test_a_read_asks_for_one_byte_past_the_limit_and_no_more(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    (root / "exact.bin").write_bytes(b"e" * 10)
    (root / "grows.bin").write_bytes(b"g" * 5)
    sizes: list[int] = []
    real_read, real_fstat = os.read, os.fstat

    def read(fd, n):
        sizes.append(n)
        return real_read(fd, n)

    def fstat_then_grow(fd):
        result = real_fstat(fd)
        if result.st_size == 5:
            (root / "grows.bin").write_bytes(b"g" * 30)
        return result

    monkeypatch.setattr(sandbox_mod.os, "read", read)
    sb = Sandbox(root, 10, 10)
    # A file of exactly the limit: one read of limit + 1 bytes gets it all, the next one sees the end.
    assert sb.read_bytes("exact.bin") == b"e" * 10
    assert sizes == [11, 1]
    # A file that grew past the limit: the first read already holds one byte too many, and reading stops there.
    sizes.clear()
    monkeypatch.setattr(sandbox_mod.os, "fstat", fstat_then_grow)
    with pytest.raises(sandbox_mod.TooLargeError):
        sb.read_bytes("grows.bin")
    assert sizes == [11]


def _fail(exc: OSError):
    def raiser(*args, **kwargs):
        raise exc

    return raiser


def eacces() -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied")


ACCESS_DENIED = "cannot access 'victim.txt': Permission denied"


@pytest.mark.parametrize(
    ("target", "call", "expected", "message"),
    [
        (
            "mkdir",
            lambda sb: sb.make_directory("p/q", parents=True),
            SandboxOSError,
            "cannot create directory 'p/q': Permission denied",
        ),
        (
            "mkdir",
            lambda sb: sb.make_directory("newdir"),
            NotFoundError,
            "'newdir' does not exist in the sandbox (missing: 'newdir')",
        ),
        ("rmdir", lambda sb: sb.delete("docs"), SandboxOSError, "cannot access 'docs': Permission denied"),
        ("unlink", lambda sb: sb.delete("victim.txt"), SandboxOSError, ACCESS_DENIED),
        ("replace", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, ACCESS_DENIED),
        ("fsync", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, ACCESS_DENIED),
        ("write", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, ACCESS_DENIED),
        ("fchmod", lambda sb: sb.write_bytes("victim.txt", b"new"), SandboxOSError, ACCESS_DENIED),
    ],
)
def test_os_errors_are_reported_never_swallowed(layout, monkeypatch, target, call, expected, message):
    # From a directory where none of the sandbox's names exist: a lookup that forgot its directory fd finds nothing.
    monkeypatch.chdir(layout.outside / "sub")
    fds = open_fds()
    before = (layout.root / "victim.txt").read_bytes()
    monkeypatch.setattr(sandbox_mod.os, target, _fail(eacces()))
    with pytest.raises(expected) as caught:
        call(layout.sandbox)
    monkeypatch.undo()
    assert type(caught.value) is expected
    assert str(caught.value) == message
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
    with pytest.raises(SandboxOSError) as caught:
        layout.sandbox.write_bytes("victim.txt", b"new")
    assert str(caught.value) == "cannot write 'victim.txt': Permission denied"
    assert open_fds() == fds


@pytest.mark.parametrize(
    "call",
    [
        lambda sb: sb.read_bytes("victim.txt"),
        lambda sb: sb.stat("victim.txt"),
        lambda sb: sb.delete("victim.txt"),
        lambda sb: sb.write_bytes("victim.txt", b"x"),
        lambda sb: sb.resolve("victim.txt"),
    ],
)
def test_a_failing_lstat_is_reported(layout, monkeypatch, call):
    monkeypatch.setattr(Sandbox, "_lstat", _fail(eacces()))
    fds = open_fds()
    with pytest.raises(SandboxOSError) as caught:
        call(layout.sandbox)
    assert str(caught.value) == ACCESS_DENIED
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
    with pytest.raises(SandboxOSError) as caught:
        sb.read_bytes("victim.txt")
    assert str(caught.value) == "cannot access 'victim.txt': Input/output error"


def failing_open(fail: Callable[[str], OSError | None]) -> Callable[..., int]:
    """os.open that raises ``fail(name)`` when that is not None."""
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        err = fail(path) if isinstance(path, str) else None
        if err is not None:
            raise err
        return real_open(path, flags, *args, **kwargs)

    return fake_open


def test_a_directory_that_cannot_be_opened_is_reported_with_the_reason(layout, monkeypatch):
    monkeypatch.chdir(layout.outside / "sub")
    monkeypatch.setattr(sandbox_mod.os, "open", failing_open(lambda name: eacces() if name == "docs" else None))
    with pytest.raises(SandboxOSError) as caught:
        layout.sandbox.list_directory("docs/")
    assert str(caught.value) == "cannot access 'docs/': Permission denied"
    # When even the look that picks the message fails, the open's reason is still the one reported.
    monkeypatch.setattr(Sandbox, "_lstat", _fail(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(SandboxOSError) as caught:
        layout.sandbox.read_bytes("docs/a.txt")
    assert str(caught.value) == "cannot access 'docs/a.txt': Permission denied"


def swap_after(monkeypatch, method: str, name: str, swap: Callable[[], None]) -> None:
    """Run ``swap`` right after the sandbox's ``method`` looked at ``name`` (once): the race window, widened."""
    original = getattr(Sandbox, method)
    done: list[bool] = []

    def racing(self, dir_fd, entry, *args):
        result = original(self, dir_fd, entry, *args)
        if entry == name and not done:
            done.append(True)
            swap()
        return result

    monkeypatch.setattr(Sandbox, method, racing)


def test_a_directory_swapped_in_before_the_rename_is_refused(layout, monkeypatch):
    victim = layout.root / "victim.txt"

    def to_directory() -> None:
        victim.unlink()
        victim.mkdir()

    monkeypatch.chdir(layout.outside / "sub")
    swap_after(monkeypatch, "_replaceable_mode", "victim.txt", to_directory)
    with pytest.raises(NotAFileError) as caught:
        layout.sandbox.write_bytes("victim.txt", b"new")
    assert str(caught.value) == "'victim.txt' is a directory, not a file"
    assert victim.is_dir()
    assert not [p for p in layout.root.rglob("*") if p.name.startswith(TMP_PREFIX)]


def test_a_directory_swapped_in_before_a_failing_open_is_refused(layout, monkeypatch):
    victim = layout.root / "victim.txt"

    def to_directory() -> None:
        victim.unlink()
        victim.mkdir()

    monkeypatch.chdir(layout.outside / "sub")
    swap_after(monkeypatch, "_lstat", "victim.txt", to_directory)
    monkeypatch.setattr(
        sandbox_mod.os,
        "open",
        failing_open(lambda name: OSError(errno.EISDIR, "Is a directory") if name == "victim.txt" else None),
    )
    with pytest.raises(NotAFileError) as caught:
        layout.sandbox.read_bytes("victim.txt")
    assert str(caught.value) == "'victim.txt' is a directory, not a file"


def test_a_socket_swapped_in_before_the_open_is_refused(layout, monkeypatch):
    def to_socket() -> None:
        (layout.root / "victim.txt").unlink()
        monkeypatch.chdir(layout.root)  # AF_UNIX paths are short: bind by relative name
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind("victim.txt")
        monkeypatch.chdir(layout.outside / "sub")

    swap_after(monkeypatch, "_lstat", "victim.txt", to_socket)
    fds = open_fds()
    with pytest.raises(SpecialFileError) as caught:
        layout.sandbox.read_bytes("victim.txt")
    assert str(caught.value) == "'victim.txt' is a device, FIFO or socket; only files and directories"
    assert open_fds() == fds


@pytest.mark.parametrize(
    ("name", "expected", "message"),
    [
        ("albums", SandboxOSError, "cannot access 'albums': Read-only file system"),
        ("victim.txt", NotADirError, "'victim.txt': 'victim.txt' is not a directory"),
        ("fifo", NotADirError, "'fifo': 'fifo' is not a directory"),
    ],
)
def test_a_failing_mkdir_is_explained_by_what_is_there(layout, monkeypatch, name, expected, message):
    (layout.root / "albums").mkdir()
    os.mkfifo(layout.root / "fifo")
    monkeypatch.chdir(layout.outside / "sub")
    monkeypatch.setattr(sandbox_mod.os, "mkdir", _fail(OSError(errno.EROFS, "Read-only file system")))
    with pytest.raises(SandboxError) as caught:
        layout.sandbox.make_directory(name)
    assert type(caught.value) is expected
    assert str(caught.value) == message


def test_a_directory_that_vanished_after_mkdir_said_it_exists_is_not_found(layout, monkeypatch):
    monkeypatch.setattr(sandbox_mod.os, "mkdir", _fail(FileExistsError(errno.EEXIST, "File exists")))
    with pytest.raises(NotFoundError) as caught:
        layout.sandbox.make_directory("ghost")
    assert str(caught.value) == "'ghost' does not exist in the sandbox"


def test_a_failed_write_whose_cleanup_fails_too_is_still_reported(layout, monkeypatch):
    monkeypatch.chdir(layout.outside / "sub")
    monkeypatch.setattr(sandbox_mod.os, "replace", _fail(eacces()))
    monkeypatch.setattr(sandbox_mod.os, "unlink", _fail(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(SandboxOSError) as caught:
        layout.sandbox.write_bytes("victim.txt", b"new")
    assert str(caught.value) == ACCESS_DENIED
    assert (layout.root / "victim.txt").read_text() == "victim\n"


def test_a_directory_that_cannot_be_synced_does_not_fail_the_write(layout, monkeypatch):
    # Some filesystems refuse fsync on a directory; the file itself was synced and renamed, so the write stands.
    real_fsync = os.fsync
    synced: list[str] = []

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append("directory")
            raise OSError(errno.EINVAL, "Invalid argument")
        synced.append("file")
        real_fsync(fd)

    monkeypatch.setattr(sandbox_mod.os, "fsync", fsync)
    assert layout.sandbox.write_bytes("victim.txt", b"new") == 3
    assert synced == ["file", "directory"]
    assert (layout.root / "victim.txt").read_bytes() == b"new"


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
