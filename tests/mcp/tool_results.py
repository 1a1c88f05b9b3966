"""Reading what the SDK client got back from a tool call: its text, and the one-line message of a tool error."""

from __future__ import annotations


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


def error_of(result, tool: str) -> str:
    """The one-line message of a tool error, without the SDK's "Error executing tool X: " prefix."""
    assert result.is_error
    prefix = f"Error executing tool {tool}: "
    message = text_of(result)
    assert message.startswith(prefix), message
    assert "Traceback" not in message and "\n" not in message
    return message.removeprefix(prefix)
