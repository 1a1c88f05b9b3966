"""inventory/local after playbooks/site.yml: both node roles on one workstation, and what it leaves alone.

The claw and crush nodes share the one machine: each node's services run and answer there, claw's clients reach
the engine on the same host, and the hostname, SSH and firewall stay as the owner had them (prepare.yml recorded
them before the converge; inventory/local/group_vars/all.yml says what is left alone).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.nodes import SYSTEMD, busctl, console_call, openclaw_reply, thread_reply

ROOT = Path(__file__).resolve().parents[3]
APPLIANCE = yaml.safe_load((ROOT / "playbooks/group_vars/all.yml").read_text())
LOCAL = yaml.safe_load((ROOT / "inventory/local/group_vars/all.yml").read_text())
SERVICES = APPLIANCE["appliance_services_defaults"]
MODEL = APPLIANCE["crush_models"][0]["name"]
# Both nodes' units (the engine chosen by default; the swarm is off until swarm_workers names workers).
UNITS = sorted(
    {s["unit"] for s in SERVICES.values() if s.get("node") in ("claw", "crush", "any")} - {SERVICES["ollama"]["unit"]}
)
# The console as the workstation's owner opens it (the certificate names localhost).
CONSOLE = f"https://localhost:{SERVICES['threadweaver']['port']}"
BEFORE = "/var/tmp/workstation-before"

# Runs on the machine with the standard library only: POST a chat request, print the status and the body.
CHAT = r"""
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=120) as resp:
    print(resp.status); print(resp.read().decode())
"""


def test_the_workstation_variables_are_inventory_locals():
    """The scenario runs with inventory/local's own choices, not defaults that happen to match."""
    assert LOCAL["base_ssh_enabled"] is False and LOCAL["base_firewall_enabled"] is False


def test_both_nodes_services_run_on_one_host(workstation):
    assert busctl(workstation, "get-property", SYSTEMD, "SystemState") == "running"
    assert busctl(workstation, "call", SYSTEMD, "ListUnitsFiltered as 1 failed") == [[]]
    down = [u for u in UNITS if not (workstation.service(u).is_running and workstation.service(u).is_enabled)]
    assert down == [], f"not running and enabled: {down}"
    # One bill of materials for the machine, with both nodes' parts: the claw apps, OpenClaw and the engine.
    record = json.loads(workstation.check_output("cat /var/lib/claw/bom.json"))
    assert record["engine"]["name"] == APPLIANCE["appliance_engine"] and record["engine"]["version"], record
    assert record["versions"]["openclaw"] and record["versions"]["claw_apps"], record


def test_threadweaver_is_healthy(workstation):
    status, body = console_call(workstation, "GET", "/healthz", base=CONSOLE)
    assert (status, body["status"]) == (200, "ok")


def test_engine_answers_a_real_completion(workstation):
    """The engine, at the address claw's clients were configured with (this same host), answers the demo model."""
    config = yaml.safe_load(workstation.check_output("cat /etc/threadweaver/config.yml"))
    url = config["providers"]["crush"]["base_url"]
    assert urlsplit(url).hostname in ("localhost", workstation.check_output("hostname")), url
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12}
    result = workstation.run("python3 -c %s %s %s", CHAT, f"{url}/chat/completions", json.dumps(body))
    assert result.rc == 0, result.stderr
    status, text = result.stdout.split("\n", 1)
    answer = json.loads(text)
    assert status == "200" and answer["usage"]["completion_tokens"] > 0, answer
    assert isinstance(answer["choices"][0]["message"]["content"], str)


def test_a_thread_is_answered_by_the_engine_on_the_same_host(workstation):
    thread_reply(workstation, MODEL, "local", base=CONSOLE)


def test_openclaw_is_ready_and_answers_through_the_engine(workstation):
    port = SERVICES["openclaw"]["port"]
    assert json.loads(workstation.check_output(f"curl -fsS http://127.0.0.1:{port}/healthz"))["status"] == "live"
    assert json.loads(workstation.check_output(f"curl -fsS http://127.0.0.1:{port}/readyz"))["ready"] is True
    openclaw_reply(workstation, MODEL)


def test_prometheus_scrapes_both_nodes_on_the_one_host(workstation):
    """claw's Prometheus reaches crush's exporter (and its own) on this machine: every target up."""
    url = f"http://127.0.0.1:{SERVICES['prometheus']['port']}/api/v1/targets"
    for _ in range(30):
        targets = json.loads(workstation.check_output(f"curl -fsS {url}"))["data"]["activeTargets"]
        ports = {urlsplit(t["scrapeUrl"]).port for t in targets}
        if all(t["health"] == "up" for t in targets) and SERVICES["crush_exporter"]["port"] in ports:
            return
        time.sleep(2)
    pytest.fail(f"targets not all up: {[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}")


def test_hostname_is_left_alone(workstation):
    assert workstation.check_output("hostname") == workstation.file(f"{BEFORE}/hostname").content_string.strip()
    assert workstation.file("/etc/hostname").content_string == workstation.file(f"{BEFORE}/etc-hostname").content_string


def test_ssh_is_left_alone(workstation):
    """The machine had no SSH server (prepare.yml): it still has none, and no SSH file changed."""
    assert not workstation.package("openssh-server").is_installed
    assert not workstation.socket("tcp://0.0.0.0:22").is_listening
    now = workstation.run("find /etc/ssh -type f -print0 | sort -z | xargs -0 sha256sum")
    assert now.stdout == workstation.file(f"{BEFORE}/ssh.sha256").content_string
    state = workstation.run('echo "$(systemctl is-enabled ssh 2>&1) $(systemctl is-active ssh 2>&1)"').stdout
    assert state == workstation.file(f"{BEFORE}/ssh.state").content_string


def test_firewall_is_left_alone(workstation):
    """nftables is neither started nor enabled, and no rule was loaded: the ruleset is as the owner left it."""
    nftables = workstation.service("nftables")
    assert not nftables.is_running and not nftables.is_enabled
    assert workstation.check_output("nft list ruleset") == ""
    assert workstation.run("ls /etc/nftables.d 2>/dev/null").stdout.split() == []


def test_zram_is_left_alone(workstation):
    assert not workstation.file("/etc/systemd/zram-generator.conf").exists
