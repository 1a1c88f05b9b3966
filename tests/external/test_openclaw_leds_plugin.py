"""The OpenClaw LED plugin (roles/openclaw/files/plugins/claw-leds) in Node, against a real LED daemon.

A small harness loads the plugin's index.js the way OpenClaw does (``register(api)`` with ``api.on`` and
``api.pluginConfig``), then fires one hook event per line it reads. The plugin's ``claw leds`` calls run the real
CLI against an LED daemon with the simulated strip, and the test reads what the daemon shows after each event.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claw.leds.client import LedClient

PLUGIN = Path(__file__).resolve().parents[2] / "roles" / "openclaw" / "files" / "plugins" / "claw-leds" / "index.js"

HARNESS = """
import { createInterface } from "node:readline";
const plugin = (await import(process.argv[2])).default;
const handlers = {};
plugin.register({
  pluginConfig: { command: process.argv[3], ttl: 40 },
  on: (name, handler) => { handlers[name] = handler; },
});
console.log(JSON.stringify(Object.keys(handlers).sort()));
for await (const line of createInterface({ input: process.stdin })) {
  const { hook, event } = JSON.parse(line);
  handlers[hook](event);
  console.log("fired " + hook);
}
"""


@pytest.fixture
def plugin(inspector, led_socket: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The plugin in Node; its `claw` command is this interpreter's claw CLI on the test daemon's socket."""
    claw = tmp_path / "claw"
    claw.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from claw.cli import main; sys.exit(main())' "
        f'"$@" --socket {led_socket}\n'
    )
    claw.chmod(0o755)
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS)
    process = subprocess.Popen(
        [inspector.node, str(harness), PLUGIN.as_uri(), str(claw)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    process.kill()
    process.wait()


def fire(process: subprocess.Popen[str], hook: str, event: dict[str, Any] | None = None) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps({"hook": hook, "event": event or {}}) + "\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == f"fired {hook}"


def layers_once(led_socket: Path, wanted: set[tuple[str, str]], timeout: float = 20.0) -> set[tuple[str, str]]:
    """The daemon's (source, state) layers once they equal ``wanted`` (the plugin's calls are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        layers = {(layer["source"], layer["state"]) for layer in LedClient(led_socket).request_sync("get")["layers"]}
        if layers == wanted or time.monotonic() > deadline:
            return layers
        time.sleep(0.1)


def test_plugin_registers_the_hooks_it_needs(plugin: subprocess.Popen[str]) -> None:
    assert plugin.stdout is not None
    hooks = json.loads(plugin.stdout.readline())
    assert hooks == ["after_tool_call", "agent_end", "before_tool_call", "model_call_ended", "model_call_started"]


def test_a_run_shows_inference_then_the_tool_call_then_clears(plugin: subprocess.Popen[str], led_socket: Path) -> None:
    assert plugin.stdout is not None
    plugin.stdout.readline()  # the registered hooks
    fire(plugin, "model_call_started")
    # One source per agent (agent:<id>; a context without an agent id is the main agent's).
    assert layers_once(led_socket, {("agent:main", "inference")}) == {("agent:main", "inference")}
    fire(plugin, "before_tool_call", {"toolName": "current_time"})
    assert layers_once(led_socket, {("agent:main", "tool_call")}) == {("agent:main", "tool_call")}
    fire(plugin, "after_tool_call", {"toolName": "current_time"})
    fire(plugin, "model_call_ended", {"outcome": "ok"})
    fire(plugin, "agent_end", {"success": True})
    assert layers_once(led_socket, set()) == set()


def test_a_failed_tool_leaves_an_error_pulse_after_the_run(plugin: subprocess.Popen[str], led_socket: Path) -> None:
    assert plugin.stdout is not None
    plugin.stdout.readline()
    fire(plugin, "before_tool_call", {"toolName": "read_file"})
    # Each event is its own `claw leds` process: let the signal land before the run ends, as a tool's run would.
    assert layers_once(led_socket, {("agent:main", "tool_call")}) == {("agent:main", "tool_call")}
    fire(plugin, "after_tool_call", {"toolName": "read_file", "error": "not found"})
    fire(plugin, "agent_end", {"success": True})
    assert layers_once(led_socket, {("openclaw-error", "error")}) == {("openclaw-error", "error")}
