"""Path-escape corpus for the files sandbox: every case is refused and nothing outside the sandbox changes."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from claw.mcp import sandbox as sandbox_mod
from claw.mcp.sandbox import (
    AlreadyExistsError,
    DirectoryNotEmptyError,
    HardLinkError,
    InvalidPathError,
    NotADirError,
    NotAFileError,
    NotFoundError,
    NotTextError,
    PathEscapeError,
    RootProtectedError,
    RootUnavailableError,
    Sandbox,
    SandboxError,
    SpecialFileError,
    SymlinkError,
    TooLargeError,
)


@dataclass(frozen=True)
class Case:
    id: str
    op: str  # read, write, delete, list, stat, mkdir
    path: str  # may use {root}, {outside}, {base}
    expect: type[SandboxError] = SandboxError
    setup: Callable[..., None] | None = field(default=None, compare=False)


# ----- setups: each gets (layout, monkeypatch) ---------------------------------------------------------------------


def link(name: str, target: str) -> Callable[..., None]:
    def make(lay, _mp) -> None:
        path = lay.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target.format(root=lay.root, outside=lay.outside, base=lay.base))

    return make


def chain(*links: tuple[str, str]) -> Callable[..., None]:
    def make(lay, mp) -> None:
        for name, target in links:
            link(name, target)(lay, mp)

    return make


def fifo(lay, _mp) -> None:
    os.mkfifo(lay.root / "fifo")


def unix_socket(lay, mp) -> None:
    # Bind by relative name: AF_UNIX paths are limited to ~108 bytes and tmp paths can be longer.
    mp.chdir(lay.root)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("sock")
    sock.close()


def hard_link_outside(lay, _mp) -> None:
    os.link(lay.outside / "secret.txt", lay.root / "hl.txt")


def big_file(lay, _mp) -> None:
    (lay.root / "big.txt").write_bytes(b"x" * (lay.sandbox.max_read_bytes + 1))


def remove_root(lay, _mp) -> None:
    shutil.rmtree(lay.root)


def recreate_root(lay, _mp) -> None:
    # Same path, a different directory: the sandbox must notice it is not the root it was given.
    # (The old one is kept, renamed, so the filesystem cannot hand its inode number to the new one.)
    lay.root.rename(lay.base / "sandbox-old")
    lay.root.mkdir()


def root_to_symlink(lay, _mp) -> None:
    lay.root.rename(lay.base / "sandbox-moved")
    lay.root.symlink_to(lay.outside)


def swap_dir_during_walk(lay, mp) -> None:
    """Race: 'docs' becomes a symlink to the outside tree at the last moment before it is opened."""
    original = Sandbox._open_dir_component
    done: list[bool] = []

    def racing(self, dir_fd: int, name: str, user_path: str) -> int:
        if name == "docs" and not done:
            done.append(True)
            (lay.root / "docs").rename(lay.root / "docs.moved")
            (lay.root / "docs").symlink_to(lay.outside)
        return original(self, dir_fd, name, user_path)

    mp.setattr(Sandbox, "_open_dir_component", racing)


def swap_leaf_after_check(replacement: str) -> Callable[..., None]:
    """Race: 'victim.txt' passes the lstat check and is then replaced before the open."""

    def make(lay, mp) -> None:
        original = Sandbox._lstat
        done: list[bool] = []

        def racing(self, dir_fd: int, name: str) -> os.stat_result:
            result = original(self, dir_fd, name)
            if name == "victim.txt" and not done:
                done.append(True)
                (lay.root / "victim.txt").unlink()
                if replacement == "symlink":
                    (lay.root / "victim.txt").symlink_to(lay.outside / "secret.txt")
                else:
                    os.mkfifo(lay.root / "victim.txt")
            return result

        mp.setattr(Sandbox, "_lstat", racing)

    return make


OUT_FILE = link("lf", "{outside}/secret.txt")
OUT_DIR = link("ld", "{outside}")
DANGLING = link("dangle", "{outside}/missing.txt")
DEVNULL = link("devnull", "/dev/null")

CORPUS: list[Case] = [
    # '..' chains
    Case("dotdot-read", "read", "../outside/secret.txt", PathEscapeError),
    Case("dotdot-etc-passwd", "read", "../../../../../../etc/passwd", PathEscapeError),
    Case("dotdot-after-dir", "read", "docs/../../outside/secret.txt", PathEscapeError),
    Case("dotdot-write-new", "write", "../outside/new.txt", PathEscapeError),
    Case("dotdot-write-existing", "write", "../outside/secret.txt", PathEscapeError),
    Case("dotdot-delete", "delete", "../outside/secret.txt", PathEscapeError),
    Case("dotdot-list", "list", "..", PathEscapeError),
    Case("dotdot-stat", "stat", "../outside", PathEscapeError),
    Case("dotdot-mkdir", "mkdir", "../outside/newdir", PathEscapeError),
    Case("dotdot-staying-inside", "read", "docs/../victim.txt", PathEscapeError),
    Case("dot-then-dotdot", "read", "./../outside/secret.txt", PathEscapeError),
    Case("dot-dir-dotdot", "read", "docs/./../../outside/secret.txt", PathEscapeError),
    Case("dotdot-double-slash", "read", "..//outside//secret.txt", PathEscapeError),
    Case("dotdot-deep-write", "write", "a/b/../../../outside/x.txt", PathEscapeError),
    Case("dotdot-40-deep", "read", "../" * 40 + "etc/passwd", PathEscapeError),
    Case("dotdot-trailing", "list", "docs/..", PathEscapeError),
    # absolute paths
    Case("abs-etc-passwd", "read", "/etc/passwd", PathEscapeError),
    Case("abs-outside-read", "read", "{outside}/secret.txt", PathEscapeError),
    Case("abs-outside-write", "write", "{outside}/new.txt", PathEscapeError),
    Case("abs-outside-delete", "delete", "{outside}/secret.txt", PathEscapeError),
    Case("abs-slash-list", "list", "/", PathEscapeError),
    Case("abs-root-dotdot", "read", "{root}/../outside/secret.txt", PathEscapeError),
    Case("abs-root-dir-dotdot", "read", "{root}/docs/../../outside/secret.txt", PathEscapeError),
    Case("abs-double-slash", "read", "//etc/passwd", PathEscapeError),
    Case("abs-base", "list", "{base}", PathEscapeError),
    # prefix sibling <root>-evil (CVE-2025-53110)
    Case("prefix-read", "read", "{root}-evil/file.txt", PathEscapeError),
    Case("prefix-write", "write", "{root}-evil/new.txt", PathEscapeError),
    Case("prefix-delete", "delete", "{root}-evil/file.txt", PathEscapeError),
    Case("prefix-list", "list", "{root}-evil", PathEscapeError),
    Case("prefix-no-dash", "read", "{root}evil/file.txt", PathEscapeError),
    Case("prefix-relative", "read", "../sandbox-evil/file.txt", PathEscapeError),
    # encoded-looking names are literal names inside the sandbox, which do not exist
    Case("pct-dotdot", "read", "%2e%2e/outside/secret.txt", NotFoundError),
    Case("pct-all", "read", "%2e%2e%2foutside%2fsecret.txt", NotFoundError),
    Case("pct-mixed", "read", "..%2f..%2fetc%2fpasswd", NotFoundError),
    Case("backslashes", "read", "..\\outside\\secret.txt", NotFoundError),
    Case("fullwidth-dots", "read", "\uff0e\uff0e/outside/secret.txt", NotFoundError),
    Case("division-slash", "read", "..\u2215outside\u2215secret.txt", NotFoundError),
    Case("file-url", "read", "file:///etc/passwd", NotFoundError),
    Case("tilde", "read", "~/.ssh/id_rsa", NotFoundError),
    Case("env-var", "read", "$HOME/.bashrc", NotFoundError),
    Case("triple-dot", "read", ".../outside/secret.txt", NotFoundError),
    # NUL bytes
    Case("nul-extension", "read", "victim.txt\x00.png", InvalidPathError),
    Case("nul-dotdot-write", "write", "new\x00../../outside/x", InvalidPathError),
    Case("nul-only", "read", "\x00", InvalidPathError),
    Case("nul-in-dir", "delete", "docs\x00/a.txt", InvalidPathError),
    # very long names and paths
    Case("name-256", "read", "a" * 256, InvalidPathError),
    Case("name-300-write", "write", "a" * 300, InvalidPathError),
    Case("path-over-4096", "read", "d/" * 2100, InvalidPathError),
    Case("name-256-bytes-utf8", "write", "\u00e9" * 128, InvalidPathError),
    Case("lone-surrogate", "write", "bad\udcff", InvalidPathError),
    # symlinks to outside files and directories (CVE-2025-53109)
    Case("link-file-read", "read", "lf", SymlinkError, OUT_FILE),
    Case("link-file-write", "write", "lf", SymlinkError, OUT_FILE),
    Case("link-file-delete", "delete", "lf", SymlinkError, OUT_FILE),
    Case("link-file-stat", "stat", "lf", SymlinkError, OUT_FILE),
    Case("link-dir-read", "read", "ld/secret.txt", SymlinkError, OUT_DIR),
    Case("link-dir-write", "write", "ld/new.txt", SymlinkError, OUT_DIR),
    Case("link-dir-overwrite", "write", "ld/secret.txt", SymlinkError, OUT_DIR),
    Case("link-dir-list", "list", "ld", SymlinkError, OUT_DIR),
    Case("link-dir-delete", "delete", "ld/secret.txt", SymlinkError, OUT_DIR),
    Case("link-dir-mkdir", "mkdir", "ld/sub2", SymlinkError, OUT_DIR),
    Case("link-dir-mkdir-parents", "mkdir", "ld/x/y", SymlinkError, OUT_DIR),
    Case("link-dir-nested", "read", "ld/sub/deep.txt", SymlinkError, OUT_DIR),
    Case("link-abs-inside-root", "read", "{root}/ld/secret.txt", SymlinkError, OUT_DIR),
    Case(
        "link-chain-file",
        "read",
        "l1",
        SymlinkError,
        chain(("l2", "{outside}/secret.txt"), ("l1", "{root}/l2")),
    ),
    Case("link-chain-dir", "read", "d1/secret.txt", SymlinkError, chain(("d2", "{outside}"), ("d1", "d2"))),
    Case("link-relative-up", "read", "docs/up/secret.txt", SymlinkError, link("docs/up", "../../outside")),
    Case("link-sibling-via-dotdot", "read", "sib", SymlinkError, link("sib", "../sandbox-evil/file.txt")),
    Case("link-to-inside-file", "read", "inner", SymlinkError, link("inner", "docs/a.txt")),
    Case("link-in-middle-of-path", "write", "docs/ld/x.txt", SymlinkError, link("docs/ld", "{outside}")),
    Case("dangling-read", "read", "dangle", SymlinkError, DANGLING),
    Case("dangling-write", "write", "dangle", SymlinkError, DANGLING),
    Case("dangling-mkdir", "mkdir", "dangle", SymlinkError, DANGLING),
    Case("dev-null-read", "read", "devnull", SymlinkError, DEVNULL),
    Case("dev-null-write", "write", "devnull", SymlinkError, DEVNULL),
    Case("link-etc", "read", "etc/passwd", SymlinkError, link("etc", "/etc")),
    Case("link-slash", "list", "slash", SymlinkError, link("slash", "/")),
    Case("link-loop", "read", "loop", SymlinkError, link("loop", "loop")),
    Case("link-loop-dir", "list", "loop/x", SymlinkError, link("loop", "loop")),
    # special files: only regular files and directories
    Case("fifo-read", "read", "fifo", SpecialFileError, fifo),
    Case("fifo-write", "write", "fifo", SpecialFileError, fifo),
    Case("fifo-delete", "delete", "fifo", SpecialFileError, fifo),
    Case("fifo-stat", "stat", "fifo", SpecialFileError, fifo),
    Case("fifo-as-dir", "list", "fifo", SandboxError, fifo),
    Case("socket-read", "read", "sock", SpecialFileError, unix_socket),
    Case("dir-as-file", "read", "docs", NotAFileError),
    Case("write-over-dir", "write", "docs", NotAFileError),
    Case("hard-link-to-outside", "read", "hl.txt", HardLinkError, hard_link_outside),
    Case("oversized-read", "read", "big.txt", TooLargeError, big_file),
    # the root itself
    Case("delete-root-empty", "delete", "", RootProtectedError),
    Case("delete-root-dot", "delete", ".", RootProtectedError),
    Case("delete-root-abs", "delete", "{root}", RootProtectedError),
    Case("delete-root-slashes", "delete", ".//./", RootProtectedError),
    Case("write-root", "write", "", RootProtectedError),
    Case("mkdir-root", "mkdir", ".", RootProtectedError),
    Case("root-removed", "list", "", RootUnavailableError, remove_root),
    Case("root-recreated", "write", "new.txt", RootUnavailableError, recreate_root),
    Case("root-swapped-for-symlink", "read", "secret.txt", RootUnavailableError, root_to_symlink),
    # races: the path changes between check and use
    Case("race-dir-to-symlink-read", "read", "docs/a.txt", SymlinkError, swap_dir_during_walk),
    Case("race-dir-to-symlink-write", "write", "docs/a.txt", SymlinkError, swap_dir_during_walk),
    Case("race-dir-to-symlink-new", "write", "docs/new.txt", SymlinkError, swap_dir_during_walk),
    Case("race-dir-to-symlink-delete", "delete", "docs/a.txt", SymlinkError, swap_dir_during_walk),
    Case("race-leaf-to-symlink-read", "read", "victim.txt", SymlinkError, swap_leaf_after_check("symlink")),
    Case("race-leaf-to-fifo-read", "read", "victim.txt", SandboxError, swap_leaf_after_check("fifo")),
]


def run_op(sb: Sandbox, op: str, path: str) -> object:
    if op == "read":
        return sb.read_bytes(path)
    if op == "write":
        return sb.write_bytes(path, b"pwned\n")
    if op == "delete":
        return sb.delete(path)
    if op == "list":
        return sb.list_directory(path)
    if op == "stat":
        return sb.stat(path)
    if op == "mkdir":
        return sb.make_directory(path, parents=True)
    raise AssertionError(op)


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 50
    assert len({case.id for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_escape_is_refused_and_outside_untouched(case: Case, layout, outside_snapshot, monkeypatch):
    if case.setup is not None:
        case.setup(layout, monkeypatch)
    before = outside_snapshot()
    path = case.path.format(root=layout.root, outside=layout.outside, base=layout.base)

    with pytest.raises(case.expect) as caught:
        run_op(layout.sandbox, case.op, path)

    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message and "\n" not in message
    assert "Traceback" not in message
    assert outside_snapshot() == before
    assert (layout.outside / "secret.txt").read_bytes() == b"outside secret\n"
    assert not (layout.outside / "missing.txt").exists()


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.txt", "{outside}/secret.txt", "{root}-evil/file.txt", "a\x00b", "x" * 300],
)
def test_message_names_the_offending_path(layout, path):
    path = path.format(root=layout.root, outside=layout.outside)
    with pytest.raises(SandboxError) as caught:
        layout.sandbox.read_bytes(path)
    assert repr(path)[:60] in str(caught.value)


def test_write_race_leaf_swapped_for_symlink_replaces_the_link_not_the_target(layout, outside_snapshot, monkeypatch):
    # A symlink planted after the check is replaced by renameat, so the outside file is never written.
    swap_leaf_after_check("symlink")(layout, monkeypatch)
    before = outside_snapshot()
    layout.sandbox.write_bytes("victim.txt", b"new content\n")
    assert outside_snapshot() == before
    victim = layout.root / "victim.txt"
    assert not victim.is_symlink()
    assert victim.read_bytes() == b"new content\n"


def test_device_file_inside_is_refused_without_opening(layout, monkeypatch):
    # Making a real device node needs root; fake the lstat result and make sure nothing gets opened.
    fake = os.stat_result((0o020666, 1, 1, 1, 0, 0, 0, 0, 0, 0))
    monkeypatch.setattr(Sandbox, "_lstat", lambda self, dir_fd, name: fake)
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(
        sandbox_mod.os,
        "open",
        lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k),
    )
    with pytest.raises(SpecialFileError):
        layout.sandbox.read_bytes("victim.txt")
    assert "victim.txt" not in opened


# ----- the exact refusal messages ----------------------------------------------------------------------------------
# The files server hands a refusal's message to the model as the tool's error text: the wording, the quoted path and
# the numbers in it are part of the tools' contract, so each one is pinned here word for word.


def binary_file(lay, _mp) -> None:
    (lay.root / "bin.dat").write_bytes(b"\xff\xfe\x00")


@dataclass(frozen=True)
class Refusal:
    id: str
    call: Callable[[Sandbox], object]
    expect: type[SandboxError]
    message: str  # may use {root}, {outside}
    setup: Callable[..., None] | None = field(default=None, compare=False)


LINK_REFUSED = "'lf' is a symlink; symlinks are refused"
SPECIAL = "is a device, FIFO or socket; only files and directories"

REFUSALS: list[Refusal] = [
    # the path as text
    Refusal(
        "dotdot",
        lambda sb: sb.read_bytes("../outside/secret.txt"),
        PathEscapeError,
        "path '../outside/secret.txt' contains '..', which is not allowed in the sandbox",
    ),
    Refusal(
        "absolute-outside",
        lambda sb: sb.read_bytes(f"{sb.root.parent}/outside/secret.txt"),
        PathEscapeError,
        "absolute path '{outside}/secret.txt' is outside the sandbox root {root}",
    ),
    Refusal("nul", lambda sb: sb.read_bytes("a\x00b"), InvalidPathError, "path 'a\\x00b' contains a NUL byte"),
    Refusal(
        "not-utf8",
        lambda sb: sb.write_bytes("bad\udcff", b"x"),
        InvalidPathError,
        "path 'bad\\udcff' is not valid UTF-8",
    ),
    Refusal("not-a-string", lambda sb: sb.read_bytes(5), InvalidPathError, "path 5 must be a string"),  # type: ignore[arg-type]
    Refusal(
        "path-too-long",
        lambda sb: sb.read_bytes("d/" * 2100),
        InvalidPathError,
        "path '" + "d/" * 99 + "d...' is longer than 4096 bytes",
    ),
    Refusal(
        "name-too-long",
        lambda sb: sb.read_bytes("a" * 256),
        InvalidPathError,
        "path '" + "a" * 199 + "...' has a name longer than 255 bytes",
    ),
    # what is (not) there
    Refusal(
        "missing-parent",
        lambda sb: sb.read_bytes("missing/deeper/x.txt"),
        NotFoundError,
        "'missing/deeper/x.txt' does not exist in the sandbox (missing: 'missing')",
    ),
    Refusal(
        "missing-parent-stat",
        lambda sb: sb.stat("missing/x"),
        NotFoundError,
        "'missing/x' does not exist in the sandbox (missing: 'missing')",
    ),
    Refusal(
        "missing-parent-resolve",
        lambda sb: sb.resolve("missing/x"),
        NotFoundError,
        "'missing/x' does not exist in the sandbox (missing: 'missing')",
    ),
    Refusal(
        "missing-list",
        lambda sb: sb.list_directory("missing"),
        NotFoundError,
        "'missing' does not exist in the sandbox (missing: 'missing')",
    ),
    Refusal(
        "missing-leaf",
        lambda sb: sb.read_bytes("missing.txt"),
        NotFoundError,
        "'missing.txt' does not exist in the sandbox",
    ),
    Refusal("link-read", lambda sb: sb.read_bytes("lf"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal("link-write", lambda sb: sb.write_bytes("lf", b"x"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal("link-delete", lambda sb: sb.delete("lf"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal("link-stat", lambda sb: sb.stat("lf"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal("link-mkdir", lambda sb: sb.make_directory("lf"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal("link-resolve", lambda sb: sb.resolve("lf"), SymlinkError, LINK_REFUSED, OUT_FILE),
    Refusal(
        "link-on-the-way",
        lambda sb: sb.read_bytes("ld/secret.txt"),
        SymlinkError,
        "'ld/secret.txt' goes through the symlink 'ld'; symlinks are refused",
        OUT_DIR,
    ),
    Refusal(
        "file-as-directory",
        lambda sb: sb.list_directory("victim.txt"),
        NotADirError,
        "'victim.txt': 'victim.txt' is not a directory",
    ),
    Refusal("fifo-read", lambda sb: sb.read_bytes("fifo"), SpecialFileError, f"'fifo' {SPECIAL}", fifo),
    Refusal("fifo-stat", lambda sb: sb.stat("fifo"), SpecialFileError, f"'fifo' {SPECIAL}", fifo),
    Refusal("socket-read", lambda sb: sb.read_bytes("sock"), SpecialFileError, f"'sock' {SPECIAL}", unix_socket),
    Refusal(
        "read-directory",
        lambda sb: sb.read_bytes("docs"),
        NotAFileError,
        "'docs' is a directory, not a file; use list_directory",
    ),
    Refusal(
        "write-over-directory",
        lambda sb: sb.write_bytes("docs", b"x"),
        NotAFileError,
        "'docs' is a directory; cannot write a file over it",
    ),
    Refusal(
        "mkdir-over-file",
        lambda sb: sb.make_directory("victim.txt"),
        AlreadyExistsError,
        "'victim.txt' already exists and is a file",
    ),
    Refusal(
        "delete-non-empty",
        lambda sb: sb.delete("docs"),
        DirectoryNotEmptyError,
        "'docs' is a directory that is not empty",
    ),
    Refusal(
        "hard-link",
        lambda sb: sb.read_bytes("hl.txt"),
        HardLinkError,
        "'hl.txt' has 2 hard links; hard-linked files are refused",
        hard_link_outside,
    ),
    Refusal("not-text", lambda sb: sb.read_text("bin.dat"), NotTextError, "'bin.dat' is not UTF-8 text", binary_file),
    # limits
    Refusal(
        "read-limit",
        lambda sb: sb.read_bytes("big.txt"),
        TooLargeError,
        "'big.txt' is 65 bytes, over the read limit of 64",
        big_file,
    ),
    Refusal(
        "write-limit",
        lambda sb: sb.write_bytes("big.bin", b"w" * 65),
        TooLargeError,
        "writing 65 bytes to 'big.bin' exceeds the limit of 64",
    ),
    # the root
    Refusal(
        "read-root", lambda sb: sb.read_bytes(""), RootProtectedError, "cannot read '': it is the sandbox root itself"
    ),
    Refusal(
        "write-root",
        lambda sb: sb.write_bytes(".", b"x"),
        RootProtectedError,
        "cannot write '.': it is the sandbox root itself",
    ),
    Refusal(
        "delete-root", lambda sb: sb.delete(""), RootProtectedError, "cannot delete '': it is the sandbox root itself"
    ),
    Refusal(
        "mkdir-root",
        lambda sb: sb.make_directory(""),
        RootProtectedError,
        "cannot create '': it is the sandbox root itself",
    ),
    Refusal(
        "root-removed",
        lambda sb: sb.list_directory(""),
        RootUnavailableError,
        "sandbox root {root} is missing or is no longer a directory",
        remove_root,
    ),
    Refusal(
        "root-replaced",
        lambda sb: sb.write_bytes("new.txt", b"x"),
        RootUnavailableError,
        "sandbox root {root} was replaced since the server started",
        recreate_root,
    ),
]


def test_refusals_are_unique():
    assert len({refusal.id for refusal in REFUSALS}) == len(REFUSALS)


@pytest.mark.parametrize("refusal", REFUSALS, ids=[refusal.id for refusal in REFUSALS])
def test_refusal_message_is_exact(refusal: Refusal, layout, monkeypatch):
    if refusal.setup is not None:
        refusal.setup(layout, monkeypatch)
    with pytest.raises(SandboxError) as caught:
        refusal.call(layout.sandbox)
    assert type(caught.value) is refusal.expect
    assert str(caught.value) == refusal.message.format(root=layout.root, outside=layout.outside)
