"""Drivers: (a) the engine's chat API with harness tools, (b) the OpenClaw agent CLI as a subprocess."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import anyio

from smeep.checks import Outcome
from smeep.engines import Engine
from smeep.tasks import Task
from smeep.toolbox import Appliance, Bench

SYSTEM = (
    "You are an assistant on a small appliance. Use the tools to act and to look things up; file names are "
    "relative to your workspace. When done, answer briefly."
)
MAX_ROUNDS = 8


class DriverTimeout(Exception):
    """The agent itself reported a timeout."""


class DriverError(Exception):
    """The agent failed (not a wrong answer: no answer)."""


class DirectDriver:
    """Tools defined and executed by the harness; the engine's chat API decides which to call."""

    name = "direct"
    seeded = True

    def __init__(self, engine: Engine, max_tokens: int | None = 512, temperature: float = 0.0) -> None:
        self.engine = engine
        self.max_tokens = max_tokens  # a base model may never stop on its own
        self.temperature = temperature

    async def run(self, task: Task, bench: Bench, model: str, seed: int | None = None) -> Outcome:
        prompt = task.render(bench.site_url)
        sampling: dict[str, Any] = {"temperature": self.temperature}
        if seed is not None:
            sampling["seed"] = seed
        if task.mode == "infer":
            asked: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
            reply = await self.engine.chat(model, asked, max_tokens=self.max_tokens, options=sampling)
            return Outcome(reply.content, None, reply.prompt_tokens, reply.output_tokens)
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        tokens_in = tokens_out = 0
        for _ in range(MAX_ROUNDS):
            reply = await self.engine.chat(
                model, messages, bench.schemas(), max_tokens=self.max_tokens, options=sampling
            )
            tokens_in += reply.prompt_tokens or 0
            tokens_out += reply.output_tokens or 0
            messages.append(self.engine.assistant_message(reply))
            if not reply.tool_calls:
                return Outcome(reply.content, len(bench.log), tokens_in or None, tokens_out or None)
            for call in reply.tool_calls:
                messages.append(self.engine.tool_message(call, await bench.call(call.name, call.arguments)))
        return Outcome(reply.content, len(bench.log), tokens_in or None, tokens_out or None)


# --- OpenClaw -----------------------------------------------------------------------------------------------------


def parse_infer(stdout: str) -> Outcome:
    """`openclaw infer model run --gateway --json`: success needs ok == true; the text is outputs[0].text."""
    data = _json(stdout)
    if data.get("ok") is not True:
        raise DriverError(str(data.get("error") or "ok is not true"))
    outputs = data.get("outputs") or [{}]
    return Outcome(str(outputs[0].get("text") or ""), None)


# OpenClaw's names for the tools a task's checks name. MCP tools come as `<server>__<tool>` (the claw servers: time,
# leds, system, crush, files) and keep their tool's name; OpenClaw's own tools are mapped to the harness tool that
# does the same work. A name not listed is kept as it is.
OPENCLAW_TOOLS = {
    "exec": "run_command",
    "bash": "run_command",
    "web_fetch": "fetch_url",
    "read": "read_file",
    "write": "write_file",
    "edit": "write_file",
    "apply_patch": "write_file",
}


def harness_name(tool: str) -> str:
    """The harness's name for a tool OpenClaw reports: `files__read_file` -> read_file, `exec` -> run_command."""
    _, sep, rest = tool.rpartition("__")
    return rest if sep else OPENCLAW_TOOLS.get(tool, tool)


# OpenClaw's Tool Search: the tools it defers (MCP servers' among them) are reached through these. The summary lists
# them beside the tool they reached; they are the way to a tool, not a tool of the task's.
TOOL_SEARCH = frozenset({"tool_call", "tool_search", "tool_describe"})


def parse_agent(stdout: str) -> tuple[Outcome, int | None]:
    """`openclaw agent --json`: status ok; text result.payloads[0].text; result.meta for tools, tokens, duration.
    result.meta.toolSummary gives `calls`, `failures` and the `tools` used, by OpenClaw's names (its Tool Search
    tools left out of the names; its `calls` count a deferred tool's call twice, the tool_call and the tool)."""
    data = _json(stdout)
    status = data.get("status")
    if status == "timeout":
        raise DriverTimeout("the agent reported a timeout")
    if status != "ok":
        raise DriverError(str(data.get("error") or data.get("summary") or f"status {status!r}"))
    result = data.get("result") or {}
    payloads = result.get("payloads") or [{}]
    meta = result.get("meta") or {}
    usage = (meta.get("agentMeta") or {}).get("usage") or {}
    summary = meta.get("toolSummary") or {}
    used = summary.get("tools")
    if isinstance(used, list):
        used = [tool for tool in used if str(tool) not in TOOL_SEARCH]
    outcome = Outcome(
        str(payloads[0].get("text") or ""),
        summary.get("calls"),
        usage.get("input"),
        usage.get("output"),
        tool_names=tuple(harness_name(str(t)) for t in used) if isinstance(used, list) else None,
        tool_failures=int(summary.get("failures") or 0),
        agent_tools=tuple(str(t) for t in used) if isinstance(used, list) else None,
    )
    duration = meta.get("durationMs")
    return outcome, int(duration) if isinstance(duration, (int, float)) else None


def _json(stdout: str) -> dict[str, Any]:
    start = stdout.find("{")  # the CLI may print a banner line first
    try:
        data = json.loads(stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError as err:
        raise DriverError(f"not JSON: {stdout[:200]!r}") from err
    if not isinstance(data, dict):
        raise DriverError(f"not a JSON object: {stdout[:200]!r}")
    return data


class OpenClawDriver:
    """Runs the OpenClaw CLI against its gateway (on the claw node, where the gateway runs). The agent brings its own
    tools (its tool policy, its MCP wiring, its prompt); every task runs. The checks read what the agent's tools
    changed where it lives on the appliance (`appliance`): the files in `--workspace`, the time server's reminder
    database, the LED daemon's strip; the system tasks read this host, where the system server runs."""

    name = "openclaw"
    seeded = False  # the agent CLI takes no seed or temperature: its own settings apply
    temperature = None

    def __init__(
        self,
        command: Sequence[str] = ("openclaw",),
        provider: str = "local",
        agent: str = "main",
        appliance: Appliance | None = None,
    ) -> None:
        self.command = list(command)
        self.provider = provider
        self.agent = agent
        self.appliance = appliance or Appliance()
        self.last_ms: int | None = None

    def argv(self, task: Task, model: str, prompt: str) -> list[str]:
        ref = model if "/" in model else f"{self.provider}/{model}"
        if task.mode == "infer":
            return [*self.command, "infer", "model", "run", "--gateway", "--json", "--model", ref, "--prompt", prompt]
        return [
            *self.command, "agent", "--agent", self.agent, "--model", ref, "--session-id", str(uuid.uuid4()),
            "--json", "--timeout", str(int(task.timeout)), "--message", prompt,
        ]  # fmt: skip

    async def invoke(self, argv: list[str]) -> tuple[int, str, str]:
        """Run the CLI: exit status, stdout, stderr."""
        done = await anyio.run_process(argv, check=False)
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")

    async def run(self, task: Task, bench: Bench, model: str, seed: int | None = None) -> Outcome:
        status, stdout, stderr = await self.invoke(self.argv(task, model, task.render(bench.site_url)))
        if task.mode == "infer":
            self.last_ms = None
            return parse_infer(stdout)
        if not stdout.strip() and status != 0:
            raise DriverError(f"exit status {status}: {stderr[-300:]}")
        outcome, self.last_ms = parse_agent(stdout)
        return outcome
