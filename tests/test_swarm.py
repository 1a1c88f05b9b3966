"""The swarm role (roles/swarm) as Ansible renders it: two workers get two users, ports, directories and keys; the
polkit rule names only worker units; the supervisor's settings pass its own checker; both units score at most 4.0 in
``systemd-analyze security`` (where this host's systemd-analyze can read a unit file offline).

Everything is rendered with Ansible's own templating (tests/ansible_render.py), nothing runs on a node; the role's
refusals before any change are in tests/test_preflight.py, the isolation on a real systemd in
molecule/default/tests/test_swarm.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible_render import REPO, Node

ROLES = ["base", "mcp_servers", "threadweaver", "openclaw", "prometheus", "swarm"]
WORKERS = [
    {"name": "research", "model": "openai/gpt-4o-mini", "cap_usd": 2.5, "max_output_tokens": 512,
     "max_history_turns": 6, "tools": {"time": "*", "files": ["read_file"]}, "outbound": ["192.0.2.10/32"]},
    {"name": "triage", "model": "crush/gemma3-270m", "cap_tokens": 200000, "max_history_turns": 4},
]  # fmt: skip
SECRETS = {
    "__swarm_tokens": {"research": "r" * 64, "triage": "t" * 64},
    "__swarm_gateway_keys": {"research": "gw-research-key-0123", "triage": "gw-triage-key-0123"},
    "__swarm_mcp_keys": {"research": "mcp-research-key-0123", "triage": "mcp-triage-key-0123"},
    "__swarm_nodejs_current": {"stat": {}},
}
MAX_EXPOSURE = 4.0


def node(**overrides: Any) -> Node:
    return Node(ROLES, swarm_workers=WORKERS, openclaw_crush_url="http://crush:8080",
                claw_apps_venv="/opt/claw/current/venv", **{**SECRETS, **overrides})  # fmt: skip


def worker_config(claw: Node, worker: dict[str, Any]) -> dict[str, Any]:
    """The worker's OpenClaw config: the openclaw role's template with the swarm role's values for it."""
    values = claw.value("_swarm_openclaw_vars", item=worker)
    return json.loads(claw.template("openclaw", "openclaw.json.j2", **values))


def test_two_workers_get_their_own_users_ports_directories_and_keys():
    claw = node()
    workers = claw.value("_swarm_workers")
    assert [w["port"] for w in workers] == [18801, 18802]
    configs = [worker_config(claw, w) for w in workers]
    envs = [claw.template("swarm", "worker.env.j2", item=w) for w in workers]
    dropins = [claw.template("swarm", "worker.conf.j2", item=w) for w in workers]
    for worker, config, env, dropin in zip(workers, configs, envs, dropins, strict=True):
        name = worker["name"]
        assert config["gateway"]["bind"] == "loopback" and config["gateway"]["port"] == worker["port"]
        assert config["gateway"]["auth"]["token"] == SECRETS["__swarm_tokens"][name]
        agent = config["agents"]["entries"][name]
        assert list(config["agents"]["entries"]) == [name]
        assert agent["workspace"] == f"/var/lib/claw-workers/{name}/workspaces/{name}"
        assert config["logging"]["file"] == f"/var/lib/claw-workers/{name}/logs/openclaw.log"
        # Its model only through ThreadWeaver's gateway, with its own key; no cloud provider of its own, no LEDs.
        assert agent["model"]["primary"] == f"tw-{name}/{worker['model']}"
        assert set(config["models"]["providers"]) == {"crush", f"tw-{name}"}
        assert config["models"]["providers"][f"tw-{name}"]["baseUrl"] == "https://127.0.0.1:8600/v1"
        assert "plugins" not in config
        key_var = f"OPENCLAW_PROVIDER_TW_{name.upper()}_KEY"
        assert config["models"]["providers"][f"tw-{name}"]["apiKey"] == "${" + key_var + "}"
        assert f"{key_var}={SECRETS['__swarm_gateway_keys'][name]}" in env
        assert f"SocketBindAllow=tcp:{worker['port']}" in dropin
    # research's MCP allow-list names two servers, reached with its own key; triage has none and sends no key.
    assert set(configs[0]["mcp"]["servers"]) == {"time", "files"}
    assert "CLAW_MCP_KEY=mcp-research-key-0123" in envs[0] and "CLAW_MCP_KEY" not in envs[1]
    assert configs[1]["mcp"]["servers"] == {}
    assert "IPAddressAllow=192.0.2.10/32" in dropins[0] and "IPAddressAllow" not in dropins[1]
    # Nothing of one worker is in the other's files.
    assert "research" not in json.dumps(configs[1]) + envs[1] + dropins[1]
    assert "triage" not in json.dumps(configs[0]) + envs[0] + dropins[0]


def test_the_template_unit_gives_each_instance_its_own_user_and_state():
    unit = node().template("swarm", "openclaw-worker@.service.j2")
    for line in ("User=claw-worker-%i", "Group=claw-worker-%i", "ReadWritePaths=/var/lib/claw-workers/%i",
                 "OPENCLAW_CONFIG_PATH=/etc/claw-workers/%i/openclaw.json", "IPAddressDeny=any",
                 "IPAddressAllow=localhost", "SocketBindDeny=any", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectProc=invisible", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):  # fmt: skip
        assert line in unit, line
    assert re.search(r"^ReadWritePaths=", unit, re.M) and len(re.findall(r"^ReadWritePaths=", unit, re.M)) == 1


def test_workers_become_threadweaver_and_mcp_clients_from_the_one_declaration():
    claw = node()
    gateway = yaml.safe_load(claw.template("threadweaver", "config.yml.j2"))["gateway"]["clients"]
    assert gateway["worker-research"] == {
        "key_file": "/etc/threadweaver/keys/gateway-worker-research.key", "cap_usd": 2.5, "cap_tokens": None,
        "providers": ["openai"], "max_output_tokens": 512, "max_history_turns": 6,
    }  # fmt: skip
    # A worker on the free local model is capped in tokens.
    triage = gateway["worker-triage"]
    assert (triage["providers"], triage["cap_usd"], triage["cap_tokens"]) == (["crush"], None, 200000)
    # ThreadWeaver reads the limits the supervisor agent writes (the file from the wiring map).
    limits_file = yaml.safe_load(claw.template("threadweaver", "config.yml.j2"))["gateway"]["limits_file"]
    assert limits_file == claw.value("appliance_services.swarm.limits_file") == claw.value("_swarm_limits_file")
    mcp = yaml.safe_load(claw.template("mcp_servers", "mcp.yml.j2"))["clients"]
    assert {"openclaw", "threadweaver", "worker-research", "worker-triage"} <= set(mcp)
    assert mcp["worker-research"]["servers"] == {"time": "*", "files": ["read_file"]}
    assert mcp["worker-research"]["files_root"] == "worker-research"
    assert mcp["worker-triage"]["servers"] == {}
    # No workers, no worker clients: the roles' own clients only, and the MCP service's console client (reminders).
    empty = Node(ROLES, swarm_workers=[])
    assert set(yaml.safe_load(empty.template("threadweaver", "config.yml.j2"))["gateway"]["clients"]) == {"claw-mcp"}
    assert yaml.safe_load(empty.template("threadweaver", "config.yml.j2"))["gateway"]["limits_file"] is None
    assert set(yaml.safe_load(empty.template("mcp_servers", "mcp.yml.j2"))["clients"]) == {"openclaw", "threadweaver"}


def test_each_worker_reaches_only_threadweaver_the_mcp_servers_and_its_own_port_over_loopback():
    claw = node()
    tasks = yaml.safe_load((REPO / "roles" / "swarm" / "tasks" / "configure.yml").read_text())
    task = next(t for t in tasks if t.get("vars", {}).get("base_firewall_egress_rules"))
    rules = claw.value(task["vars"]["base_firewall_egress_rules"])
    assert [(r["name"], r["user"]) for r in rules] == [
        ("swarm-research", "claw-worker-research"), ("swarm-triage", "claw-worker-triage")]  # fmt: skip
    allowed = {8600, 8701, 8702, 8703, 8704, 8705}
    assert set(rules[0]["ports"]) == allowed | {18801} and set(rules[1]["ports"]) == allowed | {18802}
    # The supervisor agent's MCP server is not for workers.
    assert 8706 not in rules[0]["ports"] and 8710 not in rules[0]["ports"]
    text = claw.template("base", "egress.nft.j2", item=rules[0])
    assert 'meta skuid "claw-worker-research" ct state new ip daddr 127.0.0.0/8 tcp dport != {' in text
    assert "18802" not in text and "reject with tcp reset" in text


def test_the_egress_rules_load_into_the_base_firewall(tmp_path: Path):
    """nft itself accepts the rules after the base table (in a network namespace of its own; `nobody` stands in for
    the worker's user, which nft resolves by name)."""
    if not shutil.which("nft") or not shutil.which("unshare"):
        pytest.skip("no nft or unshare on this host")
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("no user and network namespaces here")
    claw = node()
    rule = {"name": "swarm-research", "user": "nobody", "ports": [8600, 8701, 18801]}
    egress = claw.template("base", "egress.nft.j2", item=rule)
    table = claw.template("base", "nftables.conf.j2", _base_nftables_dir=str(tmp_path / "d"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "swarm-research.nft").write_text(egress)
    (tmp_path / "d" / "swarm-triage.nft").write_text(egress.replace("swarm-research", "swarm-triage"))
    (tmp_path / "nftables.conf").write_text(table)
    script = f"nft -f {tmp_path / 'nftables.conf'} && nft list chain inet picocluster_claw egress"
    result = subprocess.run(["unshare", "-rn", "sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("tcp dport != { 8600, 8701, 18801 } reject with tcp reset") == 4, result.stdout


POLKIT_HARNESS = """
const fs = require("fs");
let rule;
const polkit = {Result: {YES: "yes", NOT_HANDLED: "not_handled"}, addRule: (f) => { rule = f; }};
eval(fs.readFileSync(process.argv[2], "utf8"));
const cases = JSON.parse(process.argv[3]);
console.log(JSON.stringify(cases.map(([user, id, verb, unit]) => rule(
  {id: id, lookup: (k) => ({verb: verb, unit: unit})[k]}, {user: user}))));
"""


def test_the_polkit_rule_lets_the_supervisor_kill_and_restart_only_worker_units(tmp_path: Path):
    rules = node().template("swarm", "50-claw-swarm.rules.j2")
    units = json.loads(re.search(r"var workers = (\[.*\]);", rules).group(1))
    assert units == ["openclaw-worker@research.service", "openclaw-worker@triage.service"]
    if not shutil.which("node"):
        pytest.skip("no node on this host to evaluate the rule")
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        ("claw-swarm", manage, "restart", "openclaw-worker@research.service"),
        ("claw-swarm", manage, "kill", "openclaw-worker@triage.service"),
        ("claw-swarm", manage, "restart", "threadweaver.service"),
        ("claw-swarm", manage, "restart", "openclaw.service"),
        ("claw-swarm", manage, "restart", "openclaw-worker@unknown.service"),
        ("claw-swarm", manage, "stop", "openclaw-worker@research.service"),
        ("claw-swarm", "org.freedesktop.systemd1.manage-unit-files", "restart", "openclaw-worker@research.service"),
        ("claw-worker-research", manage, "restart", "openclaw-worker@triage.service"),
    ]
    (tmp_path / "rules.js").write_text(rules)
    (tmp_path / "harness.js").write_text(POLKIT_HARNESS)
    result = subprocess.run(["node", str(tmp_path / "harness.js"), str(tmp_path / "rules.js"), json.dumps(cases)],
                            capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    assert json.loads(result.stdout) == ["yes", "yes"] + ["not_handled"] * 6


def test_the_supervisor_settings_pass_its_own_checker(tmp_path: Path):
    settings = node().template("swarm", "swarm.yml.j2")
    parsed = yaml.safe_load(settings)
    assert [(w["name"], w["unit"], w["health_url"]) for w in parsed["workers"]] == [
        ("research", "openclaw-worker@research.service", "http://127.0.0.1:18801/readyz"),
        ("triage", "openclaw-worker@triage.service", "http://127.0.0.1:18802/readyz"),
    ]
    assert parsed["listen"] == "127.0.0.1:9812"
    path = tmp_path / "swarm.yml"
    path.write_text(settings)
    check = [sys.executable, "-m", "claw.cli", "swarm", "run", "--check", "--config", str(path)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_supervisor_is_scraped_only_when_the_swarm_runs():
    assert "job_name: swarm" not in Node(ROLES, swarm_workers=[]).template("prometheus", "prometheus.yml.j2")
    scrape = yaml.safe_load(node().template("prometheus", "prometheus.yml.j2"))["scrape_configs"]
    swarm = next(job for job in scrape if job["job_name"] == "swarm")
    assert swarm["static_configs"][0]["targets"] == ["127.0.0.1:9812"]
    assert "claw-swarm.service" in node().value("appliance_claw_units")
    assert "claw-swarm.service" not in Node(ROLES, swarm_workers=[]).value("appliance_claw_units")


def _offline_security_supported() -> bool:
    if not shutil.which("systemd-analyze"):
        return False
    version = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"systemd (\d+)", version)
    return bool(match) and int(match.group(1)) >= 252  # --offline= arrived in systemd 252


@pytest.mark.skipif(not _offline_security_supported(), reason="systemd-analyze security --offline needs systemd 252+")
@pytest.mark.parametrize("unit", ["openclaw-worker@research.service", "claw-swarm.service", "claw-mcp-swarm.service"])
def test_both_units_score_at_most_4_in_systemd_analyze_security(tmp_path: Path, unit: str):
    claw = node()
    if unit == "claw-swarm.service":
        text = claw.template("swarm", "claw-swarm.service.j2")
    elif unit == "claw-mcp-swarm.service":
        text = claw.template("swarm", "claw-mcp-swarm.service.j2")
    else:
        # The instance as systemd merges it: the template unit with the worker's drop-in in its [Service] section.
        dropin = claw.template("swarm", "worker.conf.j2", item=claw.value("_swarm_workers")[0])
        service = "\n".join(line for line in dropin.splitlines() if line and not line.startswith(("#", "[")))
        text = claw.template("swarm", "openclaw-worker@.service.j2").replace("[Install]", service + "\n\n[Install]")
    path = tmp_path / unit
    path.write_text(text)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    output = result.stdout + result.stderr
    assert "Unknown key" not in output and "Unknown section" not in output, output
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", output).group(1))
    assert score <= MAX_EXPOSURE, output


# The supervisor agent's MCP server (issue #18 item 6): its unit, its config, its agent in OpenClaw; the console
# notifications (item 7) of the reminders and the incidents.


def _unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_swarm_mcp_unit_runs_as_the_supervisor_hardened_like_it_binding_only_its_ports():
    claw = node()
    unit = _unit_settings(claw.template("swarm", "claw-mcp-swarm.service.j2"))
    supervisor = _unit_settings(claw.template("swarm", "claw-swarm.service.j2"))
    assert unit["ExecStart"] == ["/opt/claw/current/venv/bin/claw mcp serve --config /etc/claw/mcp-swarm.yml"]
    assert unit["User"] == unit["Group"] == ["claw-swarm"] and unit["SupplementaryGroups"] == ["systemd-journal"]
    assert unit["SocketBindAllow"] == ["tcp:8706", "tcp:8710"] and unit["SocketBindDeny"] == ["any"]
    assert unit["IPAddressDeny"] == ["any"] and unit["IPAddressAllow"] == ["localhost"]
    sandbox = {key: value for key, value in supervisor.items() if key not in {
        "Description", "After", "ExecStart", "SocketBindAllow", "WantedBy"}}  # fmt: skip
    assert {key: unit.get(key) for key in sandbox} == sandbox
    # No workers: no server, no supervisor agent, no key for it.
    empty = Node(ROLES, swarm_workers=[])
    assert not empty.value("_mcp_servers_swarm_supervisor")
    assert "swarm-supervisor" not in empty.value("_mcp_servers_keys")
    config = json.loads(empty.template("openclaw", "openclaw.json.j2", __openclaw_token="x" * 64))
    assert "supervisor" not in config["agents"]["entries"] and "swarm" not in config["mcp"]["servers"]


def test_the_swarm_mcp_config_passes_the_servers_own_checker(tmp_path: Path):
    claw = node(swarm_limit_bounds={"cap_usd": {"min": 0, "max": 5}, "max_output_tokens": {"min": 64, "max": 2048},
                                    "max_history_turns": {"min": 2, "max": 20}})  # fmt: skip
    text = claw.template("swarm", "mcp-swarm.yml.j2", __swarm_supervisor_key_digest="ab" * 32)
    parsed = yaml.safe_load(text)
    assert parsed["metrics_port"] == 8710
    assert parsed["clients"] == {"supervisor": {"key_sha256": "ab" * 32, "servers": {"swarm": "*"}}}
    assert parsed["servers"] == {"swarm": {
        "port": 8706, "swarm_config": "/etc/claw/swarm.yml", "limits_file": "/var/lib/claw-swarm/worker-limits.json",
        "bounds": {"cap_usd": {"min": 0, "max": 5}, "max_output_tokens": {"min": 64, "max": 2048},
                   "max_history_turns": {"min": 2, "max": 20}}}}  # fmt: skip
    path = tmp_path / "mcp-swarm.yml"
    path.write_text(text)
    check = [sys.executable, "-m", "claw.cli", "mcp", "check", "--config", str(path)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The server itself accepts the settings and the declared workers of the supervisor's settings.
    from claw.mcp import swarm as swarm_server

    settings_path = tmp_path / "swarm.yml"
    settings_path.write_text(claw.template("swarm", "swarm.yml.j2"))
    server = swarm_server.Settings.model_validate({**parsed["servers"]["swarm"], "swarm_config": settings_path})
    assert [w.name for w in swarm_server.load_swarm(server).workers] == ["research", "triage"]
    assert server.bounds.cap_usd.max == 5


def test_the_supervisor_agent_has_only_the_swarm_server_and_no_other_agent_has_it():
    claw = node()
    config = json.loads(claw.template("openclaw", "openclaw.json.j2", __openclaw_token="x" * 64,
                                      __openclaw_mcp_key="k" * 43))  # fmt: skip
    supervisor = config["agents"]["entries"]["supervisor"]
    assert supervisor["tools"] == {"allow": ["swarm__*"]}
    assert supervisor["model"]["primary"] == config["agents"]["defaults"]["model"]["primary"]
    assert config["mcp"]["servers"]["swarm"]["url"] == "http://127.0.0.1:8706/mcp"
    assert config["mcp"]["servers"]["swarm"]["headers"] == {"Authorization": "Bearer ${CLAW_MCP_SWARM_KEY}"}
    for name, agent in config["agents"]["entries"].items():
        assert name == "supervisor" or "swarm__*" in agent["tools"]["deny"], name
    # Its key reaches the gateway through the environment file the mcp_servers role writes, never the config.
    unit = _unit_settings(claw.template("openclaw", "openclaw.service.j2", __openclaw_nodejs_current={"stat": {}}))
    assert unit["EnvironmentFile"] == ["/etc/openclaw/providers.env", "-/etc/claw/mcp-keys/swarm-supervisor.env"]
    assert claw.value("_mcp_servers_keys")["swarm-supervisor"] == {}
    # The workers' configs (the same template) have no supervisor and no swarm server.
    research = worker_config(claw, claw.value("_swarm_workers")[0])
    assert set(research["agents"]["entries"]) == {"research"} and "swarm" not in research["mcp"]["servers"]


def test_reminders_and_incidents_reach_the_console_with_keys_of_gateway_clients_without_model_access(tmp_path: Path):
    claw = node()
    time = yaml.safe_load(claw.template("mcp_servers", "mcp.yml.j2"))["servers"]["time"]
    assert time["console_url"] == "https://127.0.0.1:8600/notifications"
    assert time["console_key_file"] == "/etc/claw/mcp-keys/console.key"
    assert time["console_ca_file"] == "/etc/claw/pki/ca.crt"
    assert claw.value("_mcp_servers_keys")["console"] == {"group": "claw-mcp"}
    settings = yaml.safe_load(claw.template("swarm", "swarm.yml.j2"))
    assert settings["console_notify_url"] == "https://127.0.0.1:8600/notifications"
    assert settings["console_notify_key_file"] == "/etc/claw/swarm-console.key"
    assert settings["console_notify_ca_file"] == "/etc/claw/pki/ca.crt"
    clients = yaml.safe_load(claw.template("threadweaver", "config.yml.j2"))["gateway"]["clients"]
    for name in ("claw-mcp", "swarm-supervisor"):
        assert clients[name]["providers"] == [] and clients[name]["cap_usd"] == 0, name
        assert clients[name]["key_file"] == f"/etc/threadweaver/keys/gateway-{name}.key"
    # The MCP service's key is made by the mcp_servers role (before ThreadWeaver) and taken by ThreadWeaver.
    assert claw.value("_threadweaver_gateway_clients")["claw-mcp"]["key_source"] == "/etc/claw/mcp-keys/console.key"
    # The time server's settings pass the MCP servers' own checker.
    path = tmp_path / "mcp.yml"
    path.write_text(claw.template("mcp_servers", "mcp.yml.j2"))
    check = [sys.executable, "-m", "claw.cli", "mcp", "check", "--config", str(path)]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # Off a claw node (a workstation renders these templates too): no console, no console client.
    elsewhere = Node(ROLES, host="crush", swarm_workers=[])
    assert "console_url" not in yaml.safe_load(elsewhere.template("mcp_servers", "mcp.yml.j2"))["servers"]["time"]
    assert elsewhere.value("appliance_console_gateway_clients") == {}
