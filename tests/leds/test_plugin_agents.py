"""The OpenClaw LED plugin (roles/openclaw/files/plugins/claw-leds) under Node.js, against the real LED daemon.

Each step is one Node process: it loads the plugin with a stand-in of OpenClaw's plugin API, fires one hook with
its context, and exits once the plugin's `claw leds` call has finished (a running child keeps Node alive). The
plugin's command is the real ``claw leds`` CLI pointed at the in-process daemon (simulated strip). Issue #18: one
agent finishing must not clear another agent's activity light.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "roles/openclaw/files/plugins/claw-leds/index.js"
HARNESS = """
const [plugin, hook, event, ctx, command] = process.argv.slice(1);
const handlers = {};
const api = { pluginConfig: { command, ttl: 30 }, on: (name, handler) => { handlers[name] = handler; } };
const { default: entry } = await import(plugin);
entry.register(api);
handlers[hook](JSON.parse(event), JSON.parse(ctx));
"""


@pytest.fixture
def claw(sock_dir: Path, daemon) -> Path:
    """An executable `claw` that talks to the test daemon's socket."""
    script = sock_dir / "claw"
    cli = "import sys; from claw.cli import main; sys.exit(main())"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{cli}" "$@" --socket {daemon.socket_path}\n')
    script.chmod(0o755)
    return script


async def fire(claw: Path, hook: str, event: dict | None = None, ctx: dict | None = None) -> None:
    argv = ["node", "--input-type=module", "-e", HARNESS, "--", str(PLUGIN), hook]
    argv += [json.dumps(event or {}), json.dumps(ctx or {}), str(claw)]
    with anyio.fail_after(30):
        done = await anyio.run_process(argv, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()


async def sources(client) -> dict[str, str]:
    return {layer["source"]: layer["state"] for layer in (await client.get())["layers"] if layer["source"]}


async def test_one_agent_finishing_keeps_another_agents_activity(claw, client):
    await fire(claw, "model_call_started", {}, {"agentId": "alpha", "sessionKey": "agent:alpha:main"})
    await fire(claw, "before_tool_call", {"toolName": "read_file"}, {"agentId": "beta"})
    assert await sources(client) == {"agent:alpha": "inference", "agent:beta": "tool_call"}
    await fire(claw, "agent_end", {"success": True}, {"agentId": "alpha"})
    assert await sources(client) == {"agent:beta": "tool_call"}
    answer = await client.get()
    assert answer["winner"]["source"] == "agent:beta" and answer["winner"]["state"] == "tool_call"
    await fire(claw, "agent_end", {"success": False}, {"agentId": "beta"})
    assert await sources(client) == {"openclaw-error": "error"}  # beta's activity gone, its failure shown


async def test_the_agent_comes_from_the_session_key_and_is_made_a_valid_source(claw, client):
    await fire(claw, "model_call_started", {}, {"sessionKey": "agent:gamma:telegram:42"})
    await fire(claw, "before_tool_call", {}, {"agentId": "ops team/../x" + "y" * 80})
    await fire(claw, "model_call_started", {}, {})
    found = await sources(client)
    assert found.keys() == {"agent:gamma", "agent:ops_team_.._x" + "y" * 45, "agent:main"}
    assert max(len(source) for source in found) == 64  # the daemon's longest source name
    await fire(claw, "agent_end", {}, {"sessionKey": "agent:gamma:telegram:42"})
    assert "agent:gamma" not in await sources(client)
