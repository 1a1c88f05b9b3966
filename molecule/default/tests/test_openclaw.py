"""OpenClaw on the claw node: the real gateway from the rendered config, wired to crush and the MCP servers."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.nodes import run_playbook

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
SERVERS = ["crush", "files", "leds", "system", "time"]
# The demo model's reply settings, as the appliance defines them (playbooks/group_vars/all.yml).
REPLY = yaml.safe_load((PLAYBOOKS / "group_vars" / "all.yml").read_text())["crush_models"][0]["reply"]


def cli_json(claw, command: str) -> dict:
    result = claw.run(f"openclaw {command}")
    assert result.rc == 0, result.stdout + result.stderr
    return json.loads(result.stdout[result.stdout.index("{") :])


def test_gateway_runs_hardened_as_its_own_user_and_is_ready(claw):
    assert claw.service("openclaw").is_running and claw.service("openclaw").is_enabled
    props = claw.check_output("systemctl show openclaw -p User -p NoNewPrivileges -p ProtectSystem")
    assert "User=openclaw" in props and "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props
    assert json.loads(claw.check_output("curl -fsS http://127.0.0.1:18789/healthz"))["status"] == "live"
    assert json.loads(claw.check_output("curl -fsS http://127.0.0.1:18789/readyz"))["ready"] is True
    # openclaw cannot rewrite its own config (Ansible's copy is the truth).
    assert claw.run("runuser -u openclaw -- test -w /etc/openclaw/openclaw.json").rc != 0


def test_token_is_generated_per_appliance_and_required(claw):
    token_file = claw.file("/etc/openclaw/gateway-token")
    assert (token_file.user, token_file.group, token_file.mode) == ("root", "openclaw", 0o640)
    assert re.fullmatch(r"[0-9a-f]{64}", token_file.content_string)
    # The gateway's HTTP API answers only with this appliance's token.
    assert invoke_status(claw, "") == "401"
    assert invoke_status(claw, "-H 'Authorization: Bearer " + "0" * 64 + "'") == "401"
    assert invoke_status(claw, f"-H 'Authorization: Bearer {token_file.content_string}'") == "200"


def invoke_status(claw, auth_header: str) -> str:
    """HTTP status of a harmless tool call on the gateway's API (no arguments given: no %-formatting)."""
    command = (
        "curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:18789/tools/invoke "
        '-H \'Content-Type: application/json\' -d \'{"tool": "session_status", "args": {}}\' ' + auth_header
    )
    return claw.check_output(command)


def test_mcp_servers_are_configured_and_answer_with_their_tools(claw):
    listed = claw.check_output("openclaw mcp list")
    assert all(f"- {name}" in listed for name in SERVERS), listed
    for name in SERVERS:
        probe = claw.run(f"openclaw mcp probe {name} --json")
        assert probe.rc == 0, probe.stdout + probe.stderr
        assert '"tools"' in probe.stdout or "tool" in probe.stdout.lower(), probe.stdout


def test_agents_carry_their_own_output_and_context_limits(claw):
    """Per-agent limits reach OpenClaw's schema (the role's config passed `openclaw config validate`)."""
    config = json.loads(claw.check_output("cat /etc/openclaw/openclaw.json"))
    entries = config["agents"]["entries"]
    assert entries["locked"]["params"]["maxTokens"] == 512
    assert entries["locked"]["contextLimits"] == {"memoryGetMaxChars": 6000}
    assert entries["main"]["params"]["maxTokens"] == REPLY["max_tokens"] and "contextLimits" not in entries["main"]
    assert config["models"]["providers"]["crush"]["models"][0]["maxTokens"] == REPLY["max_tokens"]
    # The demo model's stop sequences and sampling go with every request of an agent on crush, not to cloud agents.
    assert entries["main"]["params"]["extra_body"] == {k: v for k, v in REPLY.items() if k != "max_tokens"}
    assert "extra_body" not in entries["locked"]["params"]
    assert config["models"]["providers"]["scripted"]["models"][0]["contextTokens"] == 16000
    validate = claw.run("openclaw config validate")
    assert validate.rc == 0, validate.stdout + validate.stderr


def test_real_completion_from_crush_through_the_gateway(claw):
    """A newcomer's first try answers in seconds (1,024 tokens of repetition took 54 s before the reply defaults)."""
    started = time.monotonic()
    answer = cli_json(claw, "infer model run --gateway --json --model crush/gemma3-270m --prompt 'Say hello.'")
    elapsed = time.monotonic() - started
    assert answer["ok"] is True, answer
    assert elapsed < 30, f"'Say hello' took {elapsed:.1f} s"
    assert answer["transport"] == "gateway" and answer["provider"] == "crush"
    assert answer["outputs"][0]["text"].strip()


@pytest.mark.usefixtures("scripted_model")
@pytest.mark.parametrize(("agent", "allowed"), [("locked", False), ("open", True)])
def test_exec_follows_the_agents_tool_policy(claw, agent, allowed):
    marker = f"/tmp/exec-{agent}-{uuid.uuid4().hex[:8]}"
    session = f"t-{uuid.uuid4().hex}"  # a fresh session: no history from earlier runs
    run = cli_json(
        claw, f"agent --agent {agent} --session-id {session} --json --timeout 120 --message 'RUNEXEC touch {marker}'"
    )
    summary = run["result"]["meta"]["toolSummary"]
    assert summary["tools"] == ["exec"], run
    assert claw.file(marker).exists is allowed
    assert summary["failures"] == (0 if allowed else 1), run
    if not allowed:
        # The refused tool reached the LED strip through the claw-leds plugin: an error pulse from OpenClaw.
        layers = json.loads(claw.check_output("claw leds get --json"))["layers"]
        assert ("openclaw-error", "error") in [(layer["source"], layer["state"]) for layer in layers], layers


# GET a ThreadWeaver API path as the operator: log in with the appliance's password, the cluster CA checked.
THREADWEAVER_GET = r"""
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="/etc/claw/pki/ca.crt")
base = "https://molecule-claw:8600"
password = open("/etc/threadweaver/console-password").read().strip()
login = urllib.request.Request(base + "/login", data=json.dumps({"password": password}).encode(),
                               headers={"Content-Type": "application/json"})
token = json.load(urllib.request.urlopen(login, context=ctx))["token"]
request = urllib.request.Request(base + sys.argv[1], headers={"Authorization": "Bearer " + token})
print(urllib.request.urlopen(request, context=ctx).read().decode())
"""


def threadweaver(claw, path: str) -> dict:
    return json.loads(claw.check_output("python3 -c %s %s", THREADWEAVER_GET, path))


def ask_agent(claw, agent: str, message: str):
    return claw.run(
        f"openclaw agent --agent {agent} --session-id t-{uuid.uuid4().hex} --json --timeout 120 --message '{message}'"
    )


@pytest.mark.usefixtures("scripted_model")
def test_cloud_agents_spend_through_threadweaver_within_their_caps(claw):
    """Gateway agents reach their cloud model only through ThreadWeaver, each with its own key and cap; a request
    leaves only when its worst case fits under the cap (nothing leaves for `capped`, `roomy` is answered)."""
    config = json.loads(claw.check_output("cat /etc/openclaw/openclaw.json"))
    assert config["agents"]["entries"]["capped"]["model"]["primary"] == "tw-capped/scripted/scripted"
    assert config["models"]["providers"]["tw-capped"]["baseUrl"] == "https://127.0.0.1:8600/v1"
    assert config["models"]["providers"]["tw-capped"]["apiKey"] == "${OPENCLAW_PROVIDER_TW_CAPPED_KEY}"

    refused = ask_agent(claw, "capped", "hi")
    assert "scripted reply" not in refused.stdout, refused.stdout
    capped = threadweaver(claw, "/spend")["clients"].get("capped", {})
    assert capped.get("requests", 0) == 0 and capped.get("spent_usd", 0) == 0, capped

    answered = ask_agent(claw, "roomy", "hi")
    assert answered.rc == 0 and "scripted reply" in answered.stdout, answered.stdout + answered.stderr
    roomy = threadweaver(claw, "/spend")["clients"]["roomy"]
    # Billed at the usage the model reported (15 tokens at 1 USD each), not at the reservation.
    assert roomy["requests"] >= 1 and roomy["spent_usd"] == 15 * roomy["requests"] <= roomy["cap_usd"], roomy


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"openclaw_bind": "everywhere"}, "openclaw_bind"),
        (
            {"openclaw_agents": [{"id": "main", "model": "nope/none"}]},
            "every agent model must name a configured provider",
        ),
    ],
)
def test_a_bad_variable_fails_before_any_change(claw, extra_vars, message):
    before = claw.check_output("sha256sum /etc/openclaw/openclaw.json")
    pid = claw.check_output("systemctl show -p MainPID --value openclaw")
    run = run_playbook(PLAYBOOKS / "claw.yml", extra_vars, tags="openclaw")
    assert run.rc != 0
    assert run.changed == 0, run.output
    assert message in run.text, run.output
    assert claw.check_output("sha256sum /etc/openclaw/openclaw.json") == before
    assert claw.check_output("systemctl show -p MainPID --value openclaw") == pid
