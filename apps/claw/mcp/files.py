"""The `files` MCP server: list, read, write and delete files inside one sandbox directory.

Every path goes through :class:`claw.mcp.sandbox.Sandbox`, which refuses escapes by construction; a refusal comes
back to the model as a tool error (``isError: true``) carrying the sandbox's one-line message, never a traceback.

Run it with ``python -m claw.mcp.files --root DIR --stdio`` or ``--http --host 127.0.0.1 --port 8705``.
"""

import argparse
import contextlib
import ipaddress
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from claw.mcp.sandbox import MAX_LIST_ENTRIES, MAX_PATH_BYTES, Sandbox, SandboxError

SERVER_NAME = "files"
DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8705
DEFAULT_MAX_READ_BYTES = 1 << 20
DEFAULT_MAX_WRITE_BYTES = 1 << 20

INSTRUCTIONS = (
    "Files in one sandbox directory. Paths are relative to the sandbox root, with '/' between names, "
    "for example 'notes/todo.txt'; '' or '.' is the root. '..', symlinks and special files are refused. "
    "Call sandbox_path first to learn the root and the size limits."
)

PathArg = Annotated[
    str,
    Field(
        max_length=MAX_PATH_BYTES,
        description="Path relative to the sandbox root, e.g. 'notes/todo.txt'. No '..'. Use '' for the root.",
    ),
]

# Hints for clients deciding what needs a confirmation; nothing here reaches outside the sandbox (not open-world).
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CREATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
OVERWRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
DELETE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


class SandboxInfo(BaseModel):
    root: str = Field(description="Absolute path of the sandbox root on the appliance")
    max_read_bytes: int = Field(description="Largest file read_file will return, in bytes")
    max_write_bytes: int = Field(description="Largest content write_file accepts, in bytes (UTF-8)")


class DirectoryEntry(BaseModel):
    name: str
    kind: str = Field(description="file, directory, symlink or other")
    size: int = Field(description="Size in bytes (0 for anything but files)")


class DirectoryListing(BaseModel):
    path: str
    entries: list[DirectoryEntry]
    truncated: bool = Field(description=f"True when the directory has more than {MAX_LIST_ENTRIES} entries")


class FileInfo(BaseModel):
    path: str
    kind: str = Field(description="file or directory")
    size: int
    mtime: float = Field(description="Last modification, seconds since the Unix epoch")
    mode: str = Field(description="Permission bits in octal, e.g. 0o644")


@contextlib.contextmanager
def _as_tool_error() -> Iterator[None]:
    """Report a sandbox refusal as an anticipated tool error: the message reaches the model, no traceback."""
    try:
        yield
    except SandboxError as err:
        raise ToolError(str(err)) from None


def build_server(sandbox: Sandbox) -> MCPServer:
    """Create the `files` server bound to one sandbox (tests pass a temporary one)."""
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS)
    content_arg = Annotated[
        str,
        Field(
            max_length=sandbox.max_write_bytes,
            description=f"The complete new file content as text (UTF-8, at most {sandbox.max_write_bytes} bytes).",
        ),
    ]

    @server.tool(annotations=READ_ONLY)
    def sandbox_path() -> SandboxInfo:
        """Return the sandbox root directory and the read/write size limits. Takes no arguments."""
        return SandboxInfo(
            root=str(sandbox.root), max_read_bytes=sandbox.max_read_bytes, max_write_bytes=sandbox.max_write_bytes
        )

    @server.tool(annotations=READ_ONLY)
    def list_directory(path: PathArg = "") -> DirectoryListing:
        """List the files and folders in a directory of the sandbox. Use path '' for the sandbox root."""
        with _as_tool_error():
            entries, truncated = sandbox.list_directory(path)
            return DirectoryListing(
                path=sandbox.display(sandbox.parts(path)),
                entries=[DirectoryEntry(name=e.name, kind=e.kind, size=e.size) for e in entries],
                truncated=truncated,
            )

    @server.tool(annotations=READ_ONLY)
    def read_file(path: PathArg) -> str:
        """Read a text file from the sandbox and return its whole content."""
        with _as_tool_error():
            return sandbox.read_text(path)

    @server.tool(annotations=OVERWRITE)
    def write_file(path: PathArg, content: content_arg) -> str:
        """Create a text file, or replace its whole content, in an existing folder of the sandbox."""
        with _as_tool_error():
            written = sandbox.write_text(path, content)
            return f"wrote {written} bytes to {sandbox.display(sandbox.parts(path))}"

    @server.tool(annotations=DELETE)
    def delete_file(path: PathArg) -> str:
        """Delete one file, or one empty folder, from the sandbox. This cannot be undone."""
        with _as_tool_error():
            kind = sandbox.delete(path)
            return f"deleted {kind} {sandbox.display(sandbox.parts(path))}"

    @server.tool(annotations=READ_ONLY)
    def file_info(path: PathArg) -> FileInfo:
        """Show whether a path is a file or a folder, with its size, modification time and permissions."""
        with _as_tool_error():
            info = sandbox.stat(path)
            return FileInfo(path=info.path, kind=info.kind, size=info.size, mtime=info.mtime, mode=info.mode)

    @server.tool(annotations=CREATE)
    def make_directory(
        path: PathArg,
        parents: Annotated[bool, Field(description="Also create missing parent folders")] = False,
    ) -> str:
        """Create a folder in the sandbox. Succeeds without change if the folder already exists."""
        with _as_tool_error():
            created = sandbox.make_directory(path, parents=parents)
            shown = sandbox.display(sandbox.parts(path))
            return f"created directory {shown}" if created else f"directory {shown} already exists"

    return server


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="claw-mcp-files", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="sandbox directory (must exist)")
    parser.add_argument("--max-read-bytes", type=int, default=DEFAULT_MAX_READ_BYTES)
    parser.add_argument("--max-write-bytes", type=int, default=DEFAULT_MAX_WRITE_BYTES)
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="serve over stdin/stdout (the default)")
    transport.add_argument("--http", action="store_true", help="serve streamable HTTP on a loopback address")
    parser.add_argument("--host", default=DEFAULT_HTTP_HOST, help="loopback address for --http")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="port for --http")
    args = parser.parse_args(argv)
    # The server has no authentication of its own: it is only ever reachable from the appliance itself.
    if args.http and not _loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address; the files server only listens on loopback")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is out of range")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sandbox = Sandbox(args.root, args.max_read_bytes, args.max_write_bytes)
    except (OSError, ValueError) as err:
        print(f"claw-mcp-files: cannot use --root {args.root}: {err}", file=sys.stderr)
        return 2
    server = build_server(sandbox)
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
