"""A directory sandbox: every user-given path is confined to one root, by construction.

How the confinement works (and why it is TOCTOU-safe):

* A user path is first checked *as text*: no NUL bytes, no ``..`` components, bounded lengths, and an absolute
  path is accepted only when it lies inside the root *component by component* (so ``/sandbox-evil`` is never
  "inside" ``/sandbox``: the CVE-2025-53110 prefix bypass).
* The filesystem is then walked with file descriptors, never with joined path strings: the root is opened once
  per operation (and checked to be the very directory seen at construction), and every further component is
  opened with ``openat(dir_fd, name, O_NOFOLLOW | O_DIRECTORY)``. The kernel refuses to follow a symlink at each
  step, so a symlink anywhere in the path (the CVE-2025-53109 escape) fails, including one swapped in *after*
  any check we made: there is no window between "check" and "use" because the check *is* the open.
* Leaf operations use the parent directory fd (``dir_fd=``) and ``follow_symlinks=False`` / ``O_NOFOLLOW``; a
  file opened for reading is ``fstat``-ed after opening and must be the same regular file that was looked at.
* Only regular files and directories are ever read, written or removed: FIFOs, sockets and device nodes are
  refused (FIFOs are opened with ``O_NONBLOCK`` so a swapped-in FIFO cannot hang us before the fstat check).
* Writes go to a temporary file in the same directory, are fsync-ed, then ``renameat``-ed over the target, so a
  reader never sees a half-written file and a symlink at the target is replaced, never followed.

Every refusal raises a :class:`SandboxError` (a ``ValueError``) whose message names the offending path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Linux limits: PATH_MAX and NAME_MAX, in bytes.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
# A listing is for a model to read: keep it bounded.
MAX_LIST_ENTRIES = 1000
# Prefix of the temporary files of atomic writes; a leading dot keeps them out of casual listings.
TMP_PREFIX = ".claw-tmp-"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer shows up.
# O_NOCTTY: a terminal device must never become our controlling terminal.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


class SandboxError(ValueError):
    """Base of every refusal; the message is meant for the end user (no traceback needed)."""


class InvalidPathError(SandboxError):
    """The path text itself is unacceptable (NUL byte, too long, not a string)."""


class PathEscapeError(SandboxError):
    """The path points outside the sandbox (``..`` or an absolute path elsewhere)."""


class SymlinkError(SandboxError):
    """A symlink was found on the path; symlinks are never followed."""


class NotFoundError(SandboxError):
    """The path does not exist inside the sandbox."""


class NotAFileError(SandboxError):
    """A regular file was expected."""


class NotADirError(SandboxError):
    """A directory was expected."""


class SpecialFileError(SandboxError):
    """Device nodes, FIFOs and sockets are refused."""


class HardLinkError(SandboxError):
    """A file with several hard links could alias a file outside the sandbox."""


class TooLargeError(SandboxError):
    """A read or a write exceeds the configured limit."""


class RootProtectedError(SandboxError):
    """The sandbox root itself cannot be written, deleted or replaced."""


class RootUnavailableError(SandboxError):
    """The sandbox root disappeared or was replaced since the sandbox was created."""


class AlreadyExistsError(SandboxError):
    """The path already exists with another type."""


class DirectoryNotEmptyError(SandboxError):
    """Only empty directories may be deleted."""


class NotTextError(SandboxError):
    """The file is not UTF-8 text."""


class SandboxOSError(SandboxError):
    """Any other operating-system error, reported without a traceback."""


@dataclass(frozen=True)
class Entry:
    """One directory entry; ``kind`` is file, directory, symlink or other."""

    name: str
    kind: str
    size: int


@dataclass(frozen=True)
class Info:
    """What ``stat`` reports about a file or directory inside the sandbox."""

    path: str
    kind: str
    size: int
    mtime: float
    mode: str


def show(path: object) -> str:
    """Quote a user path for a message: repr escapes NUL and control characters, and long paths are cut."""
    text = repr(path)
    return text if len(text) <= 200 else text[:200] + "...'"


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class Sandbox:
    """Confine list/read/write/delete/stat to the directory ``root``."""

    def __init__(self, root: Path, max_read_bytes: int, max_write_bytes: int) -> None:
        if max_read_bytes < 1 or max_write_bytes < 1:
            raise ValueError("size limits must be positive")
        # The root is trusted configuration: resolve it once (symlinks in the *configured* path are fine).
        self.root = Path(root).resolve(strict=True)
        if not self.root.is_dir():
            raise ValueError(f"sandbox root {self.root} is not a directory")
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        root_stat = self.root.stat()
        # Identity of the root, checked on every operation, so a root swapped for another directory is noticed.
        self._root_id = (root_stat.st_dev, root_stat.st_ino)

    # ----- path text -------------------------------------------------------------------------------------------

    def parts(self, path: str) -> tuple[str, ...]:
        """Split a user path into checked components relative to the root; ``()`` means the root itself."""
        if not isinstance(path, str):
            raise InvalidPathError(f"path {show(path)} must be a string")
        if "\x00" in path:
            raise InvalidPathError(f"path {show(path)} contains a NUL byte")
        try:
            encoded = path.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPathError(f"path {show(path)} is not valid UTF-8") from None
        if len(encoded) > MAX_PATH_BYTES:
            raise InvalidPathError(f"path {show(path)} is longer than {MAX_PATH_BYTES} bytes")
        if path.startswith("/"):
            path = self._relative_to_root(path)
        parts = tuple(part for part in path.split("/") if part not in ("", "."))
        for part in parts:
            if part == "..":
                # Refused even when it would stay inside ("a/../b"): text-level '..' is never needed.
                raise PathEscapeError(f"path {show(path)} contains '..', which is not allowed in the sandbox")
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                raise InvalidPathError(f"path {show(path)} has a name longer than {MAX_NAME_BYTES} bytes")
        return parts

    def _relative_to_root(self, path: str) -> str:
        # Component-wise comparison: '/sandbox-evil' shares a string prefix with '/sandbox' but not a component.
        try:
            return str(PurePosixPath(path).relative_to(PurePosixPath(self.root)))
        except ValueError:
            raise PathEscapeError(f"absolute path {show(path)} is outside the sandbox root {self.root}") from None

    @staticmethod
    def display(parts: tuple[str, ...]) -> str:
        return "/".join(parts) or "."

    # ----- descriptor walking ----------------------------------------------------------------------------------

    def _open_root(self) -> int:
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError:
            raise RootUnavailableError(f"sandbox root {self.root} is missing or is no longer a directory") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._root_id:
            os.close(fd)
            raise RootUnavailableError(f"sandbox root {self.root} was replaced since the server started")
        return fd

    def _lstat(self, dir_fd: int, name: str) -> os.stat_result:
        """lstat relative to a directory fd (a separate method so tests can widen the race window)."""
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    def _open_dir_component(self, dir_fd: int, name: str, user_path: str) -> int:
        """Open one directory component without following a symlink; this open *is* the check."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as err:
            raise self._explain(err, dir_fd, name, user_path, want="directory") from None

    def _explain(self, err: OSError, dir_fd: int, name: str, user_path: str, want: str) -> SandboxError:
        """Turn an OSError into a clear refusal; the lstat here only picks the message, never grants access."""
        try:
            st = self._lstat(dir_fd, name)
        except FileNotFoundError:
            return NotFoundError(f"{show(user_path)} does not exist in the sandbox (missing: {show(name)})")
        except OSError:
            return SandboxOSError(f"cannot access {show(user_path)}: {err.strerror or err}")
        if stat.S_ISLNK(st.st_mode):
            return SymlinkError(f"{show(user_path)} goes through the symlink {show(name)}; symlinks are refused")
        if want == "directory" and not stat.S_ISDIR(st.st_mode):
            return NotADirError(f"{show(user_path)}: {show(name)} is not a directory")
        if want == "file" and stat.S_ISDIR(st.st_mode):
            return NotAFileError(f"{show(user_path)} is a directory, not a file")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return SpecialFileError(f"{show(user_path)} is a device, FIFO or socket; only files and directories")
        return SandboxOSError(f"cannot access {show(user_path)}: {err.strerror or err}")

    @contextlib.contextmanager
    def _directory(self, parts: tuple[str, ...], user_path: str, *, create: bool = False) -> Iterator[int]:
        """Yield an fd of the directory reached by walking ``parts`` from the root, one O_NOFOLLOW open a step."""
        fd = self._open_root()
        try:
            for name in parts:
                if create:
                    self._mkdir_if_missing(fd, name, user_path)
                next_fd = self._open_dir_component(fd, name, user_path)
                os.close(fd)
                fd = next_fd
            yield fd
        finally:
            os.close(fd)

    def _mkdir_if_missing(self, dir_fd: int, name: str, user_path: str) -> None:
        # An existing entry is fine here: the O_NOFOLLOW|O_DIRECTORY open that follows decides whether it is usable.
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except FileExistsError:
            return
        except OSError as err:
            raise SandboxOSError(f"cannot create directory {show(user_path)}: {err.strerror or err}") from None

    @contextlib.contextmanager
    def _parent(self, path: str, *, action: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
        """Yield (parent fd, leaf name, parts) for an operation that must not target the root itself."""
        parts = self.parts(path)
        if not parts:
            raise RootProtectedError(f"cannot {action} {show(path)}: it is the sandbox root itself")
        with self._directory(parts[:-1], path) as dir_fd:
            yield dir_fd, parts[-1], parts

    def _existing(self, dir_fd: int, name: str, user_path: str) -> os.stat_result:
        try:
            return self._lstat(dir_fd, name)
        except FileNotFoundError:
            raise NotFoundError(f"{show(user_path)} does not exist in the sandbox") from None
        except OSError as err:
            raise SandboxOSError(f"cannot access {show(user_path)}: {err.strerror or err}") from None

    @staticmethod
    def _require_plain(st: os.stat_result, user_path: str) -> None:
        """Only regular files and directories pass; symlinks and special files are refused."""
        if stat.S_ISLNK(st.st_mode):
            raise SymlinkError(f"{show(user_path)} is a symlink; symlinks are refused")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise SpecialFileError(f"{show(user_path)} is a device, FIFO or socket; only files and directories")

    # ----- public operations -----------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """Return the real path of ``path`` inside the root, refusing anything that escapes (it may not exist)."""
        parts = self.parts(path)
        if parts:
            with self._directory(parts[:-1], path) as dir_fd, contextlib.suppress(NotFoundError):
                self._require_plain(self._existing(dir_fd, parts[-1], path), path)
        return self.root.joinpath(*parts)

    def read_bytes(self, path: str) -> bytes:
        """Read a whole regular file of at most ``max_read_bytes`` bytes."""
        with self._parent(path, action="read") as (dir_fd, name, _parts):
            before = self._existing(dir_fd, name, path)
            self._check_readable(before, path)
            fd = self._open_leaf(dir_fd, name, path)
            try:
                after = os.fstat(fd)
                # The entry may have been swapped between lstat and open: insist on the very same regular file.
                if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                    raise SandboxError(f"{show(path)} changed while it was being opened; try again")
                self._check_readable(after, path)
                return self._read_bounded(fd, path)
            finally:
                os.close(fd)

    def read_text(self, path: str) -> str:
        data = self.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotTextError(f"{show(path)} is not UTF-8 text") from None

    def _check_readable(self, st: os.stat_result, path: str) -> None:
        self._require_plain(st, path)
        if stat.S_ISDIR(st.st_mode):
            raise NotAFileError(f"{show(path)} is a directory, not a file; use list_directory")
        # A hard link made by someone else could alias a file outside the sandbox on the same filesystem.
        if st.st_nlink > 1:
            raise HardLinkError(f"{show(path)} has {st.st_nlink} hard links; hard-linked files are refused")
        if st.st_size > self.max_read_bytes:
            raise TooLargeError(f"{show(path)} is {st.st_size} bytes, over the read limit of {self.max_read_bytes}")

    def _open_leaf(self, dir_fd: int, name: str, path: str) -> int:
        try:
            return os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError as err:
            raise self._explain(err, dir_fd, name, path, want="file") from None

    def _read_bounded(self, fd: int, path: str) -> bytes:
        # Read one byte past the limit: the file may have grown since fstat.
        chunks: list[bytes] = []
        remaining = self.max_read_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > self.max_read_bytes:
            raise TooLargeError(f"{show(path)} is over the read limit of {self.max_read_bytes} bytes")
        return data

    def write_bytes(self, path: str, data: bytes) -> int:
        """Atomically create or replace a regular file; returns the number of bytes written."""
        if len(data) > self.max_write_bytes:
            raise TooLargeError(
                f"writing {len(data)} bytes to {show(path)} exceeds the limit of {self.max_write_bytes}"
            )
        with self._parent(path, action="write") as (dir_fd, name, _parts):
            mode = self._replaceable_mode(dir_fd, name, path)
            self._atomic_write(dir_fd, name, data, mode, path)
        return len(data)

    def write_text(self, path: str, text: str) -> int:
        return self.write_bytes(path, text.encode("utf-8"))

    def _replaceable_mode(self, dir_fd: int, name: str, path: str) -> int:
        """Permission bits for the new file: kept from an existing regular file, 0o644 (minus umask) otherwise."""
        try:
            st = self._lstat(dir_fd, name)
        except FileNotFoundError:
            return -1
        except OSError as err:
            raise SandboxOSError(f"cannot access {show(path)}: {err.strerror or err}") from None
        self._require_plain(st, path)
        if stat.S_ISDIR(st.st_mode):
            raise NotAFileError(f"{show(path)} is a directory; cannot write a file over it")
        return stat.S_IMODE(st.st_mode)

    def _atomic_write(self, dir_fd: int, name: str, data: bytes, mode: int, path: str) -> None:
        tmp = TMP_PREFIX + secrets.token_hex(8)
        try:
            # O_EXCL|O_NOFOLLOW: the temp name is fresh, and nothing pre-planted there can redirect the write.
            fd = os.open(tmp, _TMP_FLAGS, 0o644, dir_fd=dir_fd)
        except OSError as err:
            raise SandboxOSError(f"cannot write {show(path)}: {err.strerror or err}") from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if mode >= 0:
                    os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            # renameat replaces the directory entry; a symlink swapped in at `name` is replaced, never followed.
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise self._explain(err, dir_fd, name, path, want="file") from None
        # Make the rename itself durable.
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)

    def delete(self, path: str) -> str:
        """Delete a regular file or an empty directory; returns what was deleted ("file" or "directory")."""
        with self._parent(path, action="delete") as (dir_fd, name, _parts):
            st = self._existing(dir_fd, name, path)
            self._require_plain(st, path)
            try:
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(name, dir_fd=dir_fd)
                    return "directory"
                # unlinkat never follows symlinks: a symlink swapped in now would be removed, not its target.
                os.unlink(name, dir_fd=dir_fd)
                return "file"
            except OSError as err:
                if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise DirectoryNotEmptyError(f"{show(path)} is a directory that is not empty") from None
                raise self._explain(err, dir_fd, name, path, want="any") from None

    def make_directory(self, path: str, *, parents: bool = False) -> bool:
        """Create a directory; returns False when it already existed (so the call is idempotent)."""
        parts = self.parts(path)
        if not parts:
            raise RootProtectedError(f"cannot create {show(path)}: it is the sandbox root itself")
        name = parts[-1]
        with self._directory(parts[:-1], path, create=parents) as dir_fd:
            try:
                os.mkdir(name, 0o755, dir_fd=dir_fd)
                return True
            except FileExistsError:
                st = self._existing(dir_fd, name, path)
                self._require_plain(st, path)
                if not stat.S_ISDIR(st.st_mode):
                    raise AlreadyExistsError(f"{show(path)} already exists and is a file") from None
                return False
            except OSError as err:
                raise self._explain(err, dir_fd, name, path, want="directory") from None

    def list_directory(self, path: str = "") -> tuple[list[Entry], bool]:
        """List a directory (sorted by name, at most MAX_LIST_ENTRIES); returns (entries, truncated)."""
        parts = self.parts(path)
        with self._directory(parts, path) as dir_fd:
            entries: list[Entry] = []
            truncated = False
            # scandir(fd) works on a duplicate of our fd, so the walk's guarantees carry over.
            with os.scandir(dir_fd) as scan:
                for item in scan:
                    if len(entries) >= MAX_LIST_ENTRIES:
                        truncated = True
                        break
                    entries.append(self._entry(item))
        return sorted(entries, key=lambda e: e.name), truncated

    @staticmethod
    def _entry(item: os.DirEntry[str]) -> Entry:
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            return Entry(item.name, "other", 0)
        return Entry(item.name, _kind(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0)

    def stat(self, path: str) -> Info:
        """Describe a regular file or directory; symlinks and special files are refused like everywhere else."""
        parts = self.parts(path)
        if not parts:
            with self._directory((), path) as dir_fd:
                return self._info(parts, os.fstat(dir_fd))
        with self._directory(parts[:-1], path) as dir_fd:
            st = self._existing(dir_fd, parts[-1], path)
            self._require_plain(st, path)
            return self._info(parts, st)

    def _info(self, parts: tuple[str, ...], st: os.stat_result) -> Info:
        return Info(
            path=self.display(parts),
            kind=_kind(st.st_mode),
            size=st.st_size if stat.S_ISREG(st.st_mode) else 0,
            mtime=st.st_mtime,
            mode=oct(stat.S_IMODE(st.st_mode)),
        )
