"""Driver (b): the OpenClaw CLI's JSON, in the shapes upstream's bench-openclaw.py reads."""

from __future__ import annotations

import json

import pytest
from smeep.drivers import DriverError, DriverTimeout, OpenClawDriver, parse_agent, parse_infer
from smeep.tasks import TASKS

AGENT_OK = {
    "status": "ok",
    "result": {
        "payloads": [{"text": "Wrote hello-bench to bench-write.txt."}],
        "meta": {
            "durationMs": 16761,
            "toolSummary": {"calls": 2},
            "agentMeta": {"usage": {"input": 9250, "output": 41}},
        },
    },
}


def test_parse_agent_ok():
    outcome, ms = parse_agent("gateway: connected\n" + json.dumps(AGENT_OK))
    assert outcome.reply.startswith("Wrote hello-bench")
    assert (outcome.tool_count, outcome.input_tokens, outcome.output_tokens, ms) == (2, 9250, 41, 16761)


def test_parse_agent_timeout_and_error():
    with pytest.raises(DriverTimeout):
        parse_agent(json.dumps({"status": "timeout"}))
    with pytest.raises(DriverError, match="boom"):
        parse_agent(json.dumps({"status": "error", "error": "boom"}))
    with pytest.raises(DriverError, match="not JSON"):
        parse_agent("{oops")


def test_parse_infer():
    assert parse_infer(json.dumps({"ok": True, "outputs": [{"text": "pong"}]})).reply == "pong"
    with pytest.raises(DriverError):
        parse_infer(json.dumps({"ok": False, "error": "no model"}))


def test_command_lines_follow_upstream():
    driver = OpenClawDriver(["openclaw"])
    infer = driver.argv(TASKS["t1-ping"], "qwen3.5:4b", "p")
    assert infer == ["openclaw", "infer", "model", "run", "--gateway", "--json", "--model", "local/qwen3.5:4b",
                     "--prompt", "p"]  # fmt: skip
    agent = driver.argv(TASKS["t2-write"], "crush/gemma3-270m", "p")
    assert agent[:6] == ["openclaw", "agent", "--agent", "main", "--model", "crush/gemma3-270m"]
    assert agent[6] == "--session-id" and len(agent[7]) == 36
    assert agent[8:] == ["--json", "--timeout", "120", "--message", "p"]
    assert driver.supports(TASKS["t2-write"]) and not driver.supports(TASKS["leds-off"])
