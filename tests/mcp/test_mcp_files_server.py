"""The `files` MCP server driven in-process by the official SDK client (`mcp.Client`)."""

from __future__ import annotations

import pytest
from claw.cli import main as claw_main
from claw.mcp.files import Settings, build_server, create
from claw.mcp.registry import ConfigError
from mcp import Client
from pydantic import ValidationError

from tests.mcp.tool_results import text_of

EXPECTED_TOOLS = {"sandbox_path", "list_directory", "read_file", "write_file", "delete_file", "file_info"}

pytestmark = pytest.mark.anyio


async def test_tools_list_has_annotations_and_schemas(layout):
    async with Client(build_server(layout.sandbox)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) >= EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description
        ann = tool.annotations
        assert ann is not None, tool.name
        assert ann.read_only_hint is not None
        assert ann.destructive_hint is not None
        assert ann.idempotent_hint is not None
        assert tool.input_schema["type"] == "object"
        if "path" in tool.input_schema.get("properties", {}):
            path_schema = tool.input_schema["properties"]["path"]
            assert path_schema["type"] == "string"
            assert path_schema["maxLength"] == 4096
            assert path_schema["description"]
    assert tools["read_file"].annotations.read_only_hint is True
    assert tools["list_directory"].annotations.read_only_hint is True
    assert tools["delete_file"].annotations.destructive_hint is True
    assert tools["delete_file"].annotations.read_only_hint is False
    assert tools["write_file"].annotations.read_only_hint is False
    content = tools["write_file"].input_schema["properties"]["content"]
    assert content["maxLength"] == layout.sandbox.max_write_bytes
    assert set(tools["write_file"].input_schema["required"]) == {"path", "content"}


async def test_write_then_read_then_list_then_delete(layout):
    async with Client(build_server(layout.sandbox)) as client:
        written = await client.call_tool("write_file", {"path": "docs/hello.txt", "content": "hi there"})
        assert not written.is_error, text_of(written)
        read = await client.call_tool("read_file", {"path": "docs/hello.txt"})
        assert not read.is_error
        assert text_of(read) == "hi there"
        listing = await client.call_tool("list_directory", {"path": "docs"})
        assert not listing.is_error
        names = [entry["name"] for entry in listing.structured_content["entries"]]
        assert names == ["a.txt", "hello.txt"]
        info = await client.call_tool("file_info", {"path": "docs/hello.txt"})
        assert info.structured_content["size"] == len("hi there")
        deleted = await client.call_tool("delete_file", {"path": "docs/hello.txt"})
        assert not deleted.is_error
    assert not (layout.root / "docs" / "hello.txt").exists()


async def test_sandbox_path_and_make_directory(layout):
    async with Client(build_server(layout.sandbox)) as client:
        info = await client.call_tool("sandbox_path", {})
        assert info.structured_content == {
            "root": str(layout.root),
            "max_read_bytes": layout.sandbox.max_read_bytes,
            "max_write_bytes": layout.sandbox.max_write_bytes,
        }
        made = await client.call_tool("make_directory", {"path": "a/b", "parents": True})
        assert not made.is_error
    assert (layout.root / "a" / "b").is_dir()


@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("read_file", {"path": "../outside/secret.txt"}, "'..'"),
        ("write_file", {"path": "../outside/new.txt", "content": "x"}, "'..'"),
        ("read_file", {"path": "{outside}/secret.txt"}, "outside the sandbox"),
        ("read_file", {"path": "{root}-evil/file.txt"}, "outside the sandbox"),
        ("delete_file", {"path": ""}, "sandbox root"),
        ("list_directory", {"path": "link"}, "symlink"),
        ("write_file", {"path": "link/new.txt", "content": "x"}, "symlink"),
    ],
)
async def test_escape_attempt_is_a_tool_error(layout, tool, arguments, fragment):
    (layout.root / "link").symlink_to(layout.outside)
    arguments = {k: v.format(root=layout.root, outside=layout.outside) for k, v in arguments.items()}
    async with Client(build_server(layout.sandbox)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    message = text_of(result)
    assert fragment in message
    assert "Traceback" not in message
    assert not (layout.outside / "new.txt").exists()
    assert (layout.outside / "secret.txt").read_bytes() == b"outside secret\n"


async def test_oversized_content_is_rejected_by_the_schema(layout):
    async with Client(build_server(layout.sandbox)) as client:
        result = await client.call_tool(
            "write_file", {"path": "big.txt", "content": "x" * (layout.sandbox.max_write_bytes + 1)}
        )
    assert result.is_error
    assert not (layout.root / "big.txt").exists()


def test_settings_refuse_unknown_keys_and_bad_limits():
    with pytest.raises(ValidationError):
        Settings.model_validate({"root": "/tmp", "rooot": "/"})
    with pytest.raises(ValidationError):
        Settings.model_validate({"root": "/tmp", "max_read_bytes": 0})


def test_create_reports_a_missing_root(tmp_path):
    with pytest.raises(ConfigError, match="cannot use root"):
        create(Settings(root=tmp_path / "missing"))


def test_cli_reports_a_missing_root_without_a_traceback(tmp_path, capsys):
    assert claw_main(["mcp", "files", "--stdio", "--set", f"root={tmp_path / 'missing'}"]) == 2
    err = capsys.readouterr().err
    assert "cannot use root" in err
    assert "Traceback" not in err
