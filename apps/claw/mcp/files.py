"""The `files` MCP server: list, read, write and delete files inside one sandbox directory.

Every path goes through :class:`claw.mcp.sandbox.Sandbox`, which refuses escapes by construction; a refusal comes
back to the model as a tool error (``isError: true``) carrying the sandbox's one-line message, never a traceback.

Run it with ``claw mcp files --stdio --set root=DIR`` or as part of ``claw mcp serve``.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict, Field

from claw.mcp.registry import ConfigError
from claw.mcp.runtime import CREATE, CURRENT_CLIENT, DELETE, OVERWRITE, READ_ONLY, tool_errors
from claw.mcp.sandbox import MAX_LIST_ENTRIES, MAX_PATH_BYTES, Sandbox, SandboxError

SERVER_NAME = "files"
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


class ClientSandboxes:
    """The sandbox of the client a call runs for (CURRENT_CLIENT): its own root, or the whole one by default."""

    def __init__(self, sandbox: Sandbox, roots: Mapping[str, str] | None = None) -> None:
        self.default = sandbox
        self.by_client: dict[str, Sandbox] = {}
        for client, root in (roots or {}).items():
            if not root:
                continue
            # Made through the sandbox itself, so a symlink planted at the client's root is refused, not followed.
            sandbox.make_directory(root, parents=True)
            self.by_client[client] = Sandbox(sandbox.root / root, sandbox.max_read_bytes, sandbox.max_write_bytes)

    def current(self) -> Sandbox:
        client = CURRENT_CLIENT.get()
        return self.default if client is None else self.by_client.get(client, self.default)


def build_server(sandbox: Sandbox, client_roots: Mapping[str, str] | None = None) -> MCPServer:
    """Create the `files` server bound to one sandbox (tests pass a temporary one); ``client_roots`` gives a
    client (by name) its own directory below it."""
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS)
    sandboxes = ClientSandboxes(sandbox, client_roots)
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
        sandbox = sandboxes.current()
        return SandboxInfo(
            root=str(sandbox.root), max_read_bytes=sandbox.max_read_bytes, max_write_bytes=sandbox.max_write_bytes
        )

    @server.tool(annotations=READ_ONLY)
    def list_directory(path: PathArg = "") -> DirectoryListing:
        """List the files and folders in a directory of the sandbox. Use path '' for the sandbox root."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            entries, truncated = sandbox.list_directory(path)
            return DirectoryListing(
                path=sandbox.display(sandbox.parts(path)),
                entries=[DirectoryEntry(name=e.name, kind=e.kind, size=e.size) for e in entries],
                truncated=truncated,
            )

    @server.tool(annotations=READ_ONLY)
    def read_file(path: PathArg) -> str:
        """Read a text file from the sandbox and return its whole content."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            return sandbox.read_text(path)

    @server.tool(annotations=OVERWRITE)
    def write_file(path: PathArg, content: content_arg) -> str:
        """Create a text file, or replace its whole content, in an existing folder of the sandbox."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            written = sandbox.write_text(path, content)
            return f"wrote {written} bytes to {sandbox.display(sandbox.parts(path))}"

    @server.tool(annotations=DELETE)
    def delete_file(path: PathArg) -> str:
        """Delete one file, or one empty folder, from the sandbox. This cannot be undone."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            kind = sandbox.delete(path)
            return f"deleted {kind} {sandbox.display(sandbox.parts(path))}"

    @server.tool(annotations=READ_ONLY)
    def file_info(path: PathArg) -> FileInfo:
        """Show whether a path is a file or a folder, with its size, modification time and permissions."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            info = sandbox.stat(path)
            return FileInfo(path=info.path, kind=info.kind, size=info.size, mtime=info.mtime, mode=info.mode)

    @server.tool(annotations=CREATE)
    def make_directory(
        path: PathArg,
        parents: Annotated[bool, Field(description="Also create missing parent folders")] = False,
    ) -> str:
        """Create a folder in the sandbox. Succeeds without change if the folder already exists."""
        sandbox = sandboxes.current()
        with tool_errors(SandboxError):
            created = sandbox.make_directory(path, parents=parents)
            shown = sandbox.display(sandbox.parts(path))
            return f"created directory {shown}" if created else f"directory {shown} already exists"

    return server


class Settings(BaseModel):
    """The files server's settings (section ``files`` of /etc/claw/mcp.yml)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, gt=0, lt=65536, description="Loopback port over HTTP (required there); unused over stdio"
    )
    root: Path = Field(Path("/var/lib/claw/sandbox"), description="The sandbox directory; it must exist")
    max_read_bytes: int = Field(DEFAULT_MAX_READ_BYTES, gt=0, le=64 << 20)
    max_write_bytes: int = Field(DEFAULT_MAX_WRITE_BYTES, gt=0, le=64 << 20)


def create(settings: Settings, client_roots: Mapping[str, str] | None = None) -> MCPServer:
    try:
        sandbox = Sandbox(settings.root, settings.max_read_bytes, settings.max_write_bytes)
        return build_server(sandbox, client_roots)
    except (OSError, ValueError) as err:
        raise ConfigError(f"server files: cannot use root {settings.root}: {err}") from None
