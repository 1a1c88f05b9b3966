"""The supervised swarm on a real systemd (roles/swarm): two workers isolated from each other by their users, the
firewall and their units' sandbox; a SIGSTOPped worker restarted by the supervisor within 60 s with its incident
recorded; the supervisor's polkit rule refusing any unit but a worker's.

Runs when the scenario's inventory names workers (swarm_workers on the claw group, at least two); skipped otherwise.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

SWARM_CONFIG = "/etc/claw/swarm.yml"
DEADLINE_S = 60


@pytest.fixture(scope="module")
def workers(claw) -> dict[str, int]:
    """worker name -> its loopback port, as the supervisor's settings name them."""
    if not claw.file(SWARM_CONFIG).exists:
        pytest.skip("no swarm on this scenario's claw node (swarm_workers is empty)")
    settings = yaml.safe_load(claw.check_output(f"cat {SWARM_CONFIG}"))
    found = {w["name"]: int(re.search(r":(\d+)/", w["health_url"]).group(1)) for w in settings["workers"]}
    if len(found) < 2:
        pytest.skip("the isolation checks need two workers")
    return found


def pair(workers: dict[str, int]) -> tuple[str, str]:
    a, b = sorted(workers)[:2]
    return a, b


def as_user(user: str, command: str) -> str:
    return f"runuser -u {user} -- {command}"


def main_pid(claw, unit: str) -> int:
    return int(claw.check_output(f"systemctl show -p MainPID --value {unit}"))


def wait_ready(claw, port: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if claw.run(f"curl -fsS -m 3 http://127.0.0.1:{port}/readyz").rc == 0:
            return
        time.sleep(2)
    raise AssertionError(f"the worker on port {port} did not become ready in {timeout} s")


def test_each_worker_runs_as_its_own_user_on_its_own_loopback_port(claw, workers):
    users = set()
    for name, port in workers.items():
        unit = f"openclaw-worker@{name}.service"
        assert claw.service(unit).is_running and claw.service(unit).is_enabled
        props = claw.check_output(f"systemctl show {unit} -p User -p ProtectSystem -p NoNewPrivileges")
        assert f"User=claw-worker-{name}" in props and "ProtectSystem=strict" in props
        users.add(claw.check_output(f"ps -o user= -p {main_pid(claw, unit)}").strip())
        # The local address column of each listening socket: loopback only (IPv4 and IPv6).
        local = {line.split()[3] for line in claw.check_output(f"ss -Hltn 'sport = :{port}'").splitlines()}
        assert f"127.0.0.1:{port}" in local and local <= {f"127.0.0.1:{port}", f"[::1]:{port}"}, local
        assert claw.file(f"/var/lib/claw-workers/{name}").mode == 0o700
        assert claw.file(f"/var/lib/claw-workers/{name}").user == f"claw-worker-{name}"
        assert claw.user(f"claw-worker-{name}").shell == "/usr/sbin/nologin"
    assert len(users) == len(workers)


def test_a_worker_cannot_read_another_workers_token_or_workspace(claw, workers):
    a, b = pair(workers)
    user = f"claw-worker-{a}"
    # Its own, yes (so the refusals below are the isolation, not a broken runuser).
    assert claw.run(as_user(user, f"cat /etc/claw-workers/{a}/gateway-token")).rc == 0
    assert claw.run(as_user(user, f"ls /var/lib/claw-workers/{a}/workspaces")).rc == 0
    for path in (f"/etc/claw-workers/{b}/gateway-token", f"/etc/claw-workers/{b}/worker.env",
                 f"/etc/claw-workers/{b}/openclaw.json"):  # fmt: skip
        assert claw.run(as_user(user, f"cat {path}")).rc != 0, path
    assert claw.run(as_user(user, f"ls /var/lib/claw-workers/{b}")).rc != 0
    assert claw.run(as_user(user, f"ls /var/lib/claw-workers/{b}/workspaces")).rc != 0
    # Nor the appliance's secrets: the MCP keys, ThreadWeaver's keys, the main gateway's token.
    for path in ("/etc/claw/mcp-keys/openclaw.key", f"/etc/claw/mcp-keys/worker-{b}.key",
                 f"/etc/threadweaver/keys/gateway-worker-{b}.key", "/etc/openclaw/gateway-token"):  # fmt: skip
        assert claw.run(as_user(user, f"cat {path}")).rc != 0, path


def test_a_worker_cannot_connect_to_another_workers_port(claw, workers):
    a, b = pair(workers)
    user = f"claw-worker-{a}"
    assert claw.run(as_user(user, f"curl -fsS -m 5 http://127.0.0.1:{workers[a]}/healthz")).rc == 0
    refused = claw.run(as_user(user, f"curl -sS -m 5 http://127.0.0.1:{workers[b]}/healthz"))
    assert refused.rc != 0, refused.stdout
    # Nor the main gateway; root (and the supervisor) still reach B.
    assert claw.run(as_user(user, "curl -sS -m 5 http://127.0.0.1:18789/healthz")).rc != 0
    assert claw.run(f"curl -fsS -m 5 http://127.0.0.1:{workers[b]}/healthz").rc == 0
    assert claw.run(as_user("claw-swarm", f"curl -fsS -m 5 http://127.0.0.1:{workers[b]}/healthz")).rc == 0


def gateway(claw, worker: str, body: dict) -> tuple[int, dict]:
    """A chat request to ThreadWeaver's gateway with the worker's own key, as its OpenClaw sends it."""
    key = f"/etc/threadweaver/keys/gateway-worker-{worker}.key"
    result = claw.run(
        "curl -sS -m 60 --cacert /etc/claw/pki/ca.crt -o /tmp/gateway-reply.json -w '%%{http_code}' "
        "-H 'Content-Type: application/json' -H \"Authorization: Bearer $(cat %s)\" "
        "https://127.0.0.1:8600/v1/chat/completions -d %s",
        key,
        json.dumps(body),
    )
    assert result.rc == 0, result.stderr
    return int(result.stdout), json.loads(claw.check_output("cat /tmp/gateway-reply.json") or "{}")


def upstream(claw) -> dict:
    """What reached the scripted provider double so far."""
    return json.loads(claw.check_output("curl -fsS http://127.0.0.1:8099/v1/requests"))


@pytest.mark.usefixtures("scripted_model")
def test_a_worker_past_its_cap_gets_402_and_nothing_reaches_the_provider(claw, workers):
    """beta's cap (0.50 USD at 1 USD a token) has no room for a request's worst case: refused before it leaves."""
    before = upstream(claw)["count"]
    hello = {"model": "scripted/scripted", "messages": [{"role": "user", "content": "hi"}]}
    status, body = gateway(claw, "beta", hello)
    assert status == 402, body
    assert upstream(claw)["count"] == before


@pytest.mark.usefixtures("scripted_model")
def test_a_workers_history_and_output_sent_upstream_stay_within_its_limits(claw, workers):
    """alpha: at most 4 whole turns of history and 256 output tokens reach the model, whatever the agent sends."""
    messages = [{"role": "system", "content": "You are alpha."}]
    for turn in range(10):
        messages += [{"role": "user", "content": f"question {turn}"}]
        messages += [{"role": "assistant", "content": f"answer {turn}"}]
    messages.append({"role": "user", "content": "the last question"})
    status, body = gateway(claw, "alpha", {"model": "scripted/scripted", "messages": messages, "max_tokens": 4000})
    assert status == 200, body
    sent = upstream(claw)["requests"][-1]
    assert sent["roles"].count("user") == 4 and sent["roles"][0] == "system", sent
    assert sent["max_tokens"] is not None and sent["max_tokens"] <= 256, sent


def test_the_units_sandbox_scores_at_most_4(claw, workers):
    for unit in [f"openclaw-worker@{name}.service" for name in workers] + ["claw-swarm.service"]:
        output = claw.run(f"systemd-analyze security --no-pager {unit}").stdout
        score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", output).group(1))
        assert score <= 4.0, f"{unit}: {score}"


def test_the_supervisors_polkit_rule_allows_worker_restarts_and_refuses_other_units(claw, workers):
    _, b = pair(workers)
    refused = claw.run(as_user("claw-swarm", "systemctl restart threadweaver.service"))
    assert refused.rc != 0 and re.search(r"denied|authentication required", refused.stderr, re.I), refused.stderr
    assert claw.run(as_user("claw-swarm", "systemctl restart openclaw.service")).rc != 0
    assert claw.run(as_user("claw-swarm", f"systemctl stop openclaw-worker@{b}.service")).rc != 0
    before = main_pid(claw, f"openclaw-worker@{b}.service")
    allowed = claw.run(as_user("claw-swarm", f"systemctl restart openclaw-worker@{b}.service"))
    assert allowed.rc == 0, allowed.stderr
    assert main_pid(claw, f"openclaw-worker@{b}.service") != before
    wait_ready(claw, workers[b])


def test_a_sigstopped_worker_is_restarted_within_60_s_with_its_incident_recorded(claw, workers):
    a, _ = pair(workers)
    unit = f"openclaw-worker@{a}.service"
    wait_ready(claw, workers[a])
    stopped = main_pid(claw, unit)
    assert claw.run(f"kill -STOP {stopped}").rc == 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < DEADLINE_S + 5:
            pid = main_pid(claw, unit)
            if pid not in (0, stopped) and claw.service(unit).is_running:
                break
            time.sleep(1)
        took = time.monotonic() - started
    finally:
        claw.run(f"kill -CONT {stopped}")  # if it was not restarted, leave no stopped process behind
    assert main_pid(claw, unit) != stopped, "the stopped worker was not restarted"
    assert took <= DEADLINE_S, f"restarted after {took:.0f} s"
    incidents = claw.check_output(f"claw swarm incidents --config {SWARM_CONFIG} --worker {a} --json")
    kinds = [json.loads(line)["kind"] for line in incidents.splitlines() if line.strip()]
    assert "stopped" in kinds, incidents
    wait_ready(claw, workers[a])
    metrics = claw.check_output("curl -fsS http://127.0.0.1:9812/metrics")
    assert re.search(rf'claw_swarm_restarts_total{{worker="{a}"}} [1-9]', metrics), metrics


# The supervisor agent's MCP server (claw-mcp-swarm.service) and the console notifications (issue #18 items 6, 7).
SWARM_MCP_PORT = 8706
SWARM_MCP_METRICS_PORT = 8710
SUPERVISOR_KEY_FILE = "/etc/claw/mcp-keys/swarm-supervisor.key"
VENV_PYTHON = "/opt/claw/current/venv/bin/python"
INITIALIZE = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}}
)  # fmt: skip
# Runs on the claw node with the release's own SDK: one MCP tool call over loopback with the key of the file named
# last, printed as JSON.
MCP_CALL = r"""
import json, sys, anyio
from pathlib import Path
from mcp import Client
from claw.mcp.client import keyed_transport, read_key
async def main():
    url = f"http://127.0.0.1:{sys.argv[1]}/mcp"
    async with Client(keyed_transport(url, read_key(Path(sys.argv[4])))) as client:
        result = await client.call_tool(sys.argv[2], json.loads(sys.argv[3]))
        text = "".join(block.text for block in result.content if block.type == "text")
        print(json.dumps({"error": result.is_error, "data": result.structured_content, "text": text}))
anyio.run(main)
"""


def mcp_call(claw, port: int, tool: str, arguments: dict, key_file: str) -> dict:
    result = claw.run(f"{VENV_PYTHON} -c %s %s %s %s %s", MCP_CALL, str(port), tool, json.dumps(arguments), key_file)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_the_swarm_mcp_server_runs_as_the_supervisor_on_loopback_and_refuses_anonymous_callers(claw, workers):
    unit = "claw-mcp-swarm.service"
    assert claw.service(unit).is_running and claw.service(unit).is_enabled
    props = claw.check_output(f"systemctl show {unit} -p User -p SupplementaryGroups -p ProtectSystem")
    assert "User=claw-swarm" in props and "systemd-journal" in props and "ProtectSystem=strict" in props
    listening = claw.check_output("ss -Hltn")
    for port in (SWARM_MCP_PORT, SWARM_MCP_METRICS_PORT):
        assert f"127.0.0.1:{port} " in listening, port
        assert f"0.0.0.0:{port} " not in listening and f"*:{port} " not in listening
    status = claw.check_output(
        "runuser -u nobody -- curl -s -o /dev/null -w '%%{http_code}' -X POST -H 'Content-Type: application/json' "
        "-H 'Accept: application/json, text/event-stream' --data %s http://127.0.0.1:%s/mcp",
        INITIALIZE,
        str(SWARM_MCP_PORT),
    )
    assert status == "401", status
    assert claw.run(f"runuser -u nobody -- cat {SUPERVISOR_KEY_FILE}").rc != 0
    output = claw.run(f"systemd-analyze security --no-pager {unit}").stdout
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", output).group(1))
    assert score <= 4.0, f"{unit}: {score}"


def test_the_supervisor_restarts_a_worker_through_its_server_and_nothing_else(claw, workers):
    _, b = pair(workers)
    wait_ready(claw, workers[b])
    listed = mcp_call(claw, SWARM_MCP_PORT, "list_workers", {}, SUPERVISOR_KEY_FILE)
    assert not listed["error"], listed
    assert sorted(w["name"] for w in listed["data"]["workers"]) == sorted(workers)
    before = main_pid(claw, f"openclaw-worker@{b}.service")
    restarted = mcp_call(claw, SWARM_MCP_PORT, "restart_worker", {"worker": b}, SUPERVISOR_KEY_FILE)
    assert not restarted["error"] and restarted["data"]["restarted"], restarted
    assert main_pid(claw, f"openclaw-worker@{b}.service") != before
    wait_ready(claw, workers[b])
    threadweaver = main_pid(claw, "threadweaver.service")
    refused = mcp_call(claw, SWARM_MCP_PORT, "restart_worker", {"worker": "threadweaver.service"}, SUPERVISOR_KEY_FILE)
    assert refused["error"] and "not a declared worker" in refused["text"], refused
    assert main_pid(claw, "threadweaver.service") == threadweaver
    # Another client's key (OpenClaw's, for the claw MCP servers) is not the supervisor's: refused.
    other = claw.run(
        f"{VENV_PYTHON} -c %s %s %s %s %s", MCP_CALL, str(SWARM_MCP_PORT), "list_workers", "{}",
        "/etc/claw/mcp-keys/openclaw.key",
    )  # fmt: skip
    assert other.rc != 0


def test_openclaw_has_the_supervisor_agent_with_only_the_swarm_server(claw, workers):
    config = json.loads(claw.check_output("cat /etc/openclaw/openclaw.json"))
    assert config["agents"]["entries"]["supervisor"]["tools"] == {"allow": ["swarm__*"]}
    assert config["mcp"]["servers"]["swarm"]["url"] == f"http://127.0.0.1:{SWARM_MCP_PORT}/mcp"
    for name, agent in config["agents"]["entries"].items():
        assert name == "supervisor" or "swarm__*" in agent["tools"].get("deny", []), name
    assert claw.file("/etc/claw/mcp-keys/swarm-supervisor.env").mode == 0o600
    assert claw.service("openclaw.service").is_running
    # OpenClaw reaches the swarm server with the supervisor's key (the CLI reads the unit's environment files).
    probe = claw.run("openclaw mcp probe swarm --json")
    assert probe.rc == 0 and "tool" in probe.stdout.lower(), probe.stdout + probe.stderr


def test_a_fired_reminder_shows_up_in_the_console_notifications(claw, workers):
    from tests.nodes import console_call, console_login

    # The MCP service's console key: its own, and ThreadWeaver's gateway client claw-mcp has the same.
    assert claw.run("runuser -u claw-mcp -- cat /etc/claw/mcp-keys/console.key").rc == 0
    assert claw.check_output("cat /etc/claw/mcp-keys/console.key") == claw.check_output(
        "cat /etc/threadweaver/keys/gateway-claw-mcp.key"
    )
    assert claw.run("runuser -u claw-swarm -- cat /etc/claw/swarm-console.key").rc == 0
    marker = f"swarm-reminder-{int(time.time())}"
    created = mcp_call(claw, 8704, "create_reminder", {"message": marker, "in_seconds": 2},
                       "/etc/claw/mcp-keys/openclaw.key")  # fmt: skip
    assert not created["error"], created
    token = console_login(claw)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = console_call(claw, "GET", "/notifications?limit=50", token=token)
        assert status == 200, body
        found = [n for n in body["notifications"] if marker in json.dumps(n)]
        if found:
            assert found[0]["source"] == "reminder", found
            return
        time.sleep(2)
    raise AssertionError(f"the reminder {marker} did not reach /notifications in 60 s")


@pytest.mark.usefixtures("scripted_model")
def test_the_supervisor_changes_a_workers_limits_within_bounds_and_the_gateway_applies_them(claw, workers):
    too_many = {"worker": "alpha", "max_output_tokens": 100000}
    out_of_bounds = mcp_call(claw, SWARM_MCP_PORT, "set_worker_limits", too_many, SUPERVISOR_KEY_FILE)
    assert out_of_bounds["error"], out_of_bounds
    changed = mcp_call(claw, SWARM_MCP_PORT, "set_worker_limits", {"worker": "alpha", "max_output_tokens": 64},
                       SUPERVISOR_KEY_FILE)  # fmt: skip
    assert not changed["error"], changed
    try:
        # ThreadWeaver applies the file on the next gateway request, without a restart.
        status, body = gateway(claw, "alpha", {"model": "scripted/scripted", "max_tokens": 4000,
                                                "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert status == 200, body
        assert upstream(claw)["requests"][-1]["max_tokens"] == 64
    finally:
        mcp_call(claw, SWARM_MCP_PORT, "set_worker_limits", {"worker": "alpha", "max_output_tokens": 256},
                 SUPERVISOR_KEY_FILE)  # fmt: skip
