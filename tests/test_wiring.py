"""The appliance's wiring has one source: appliance_services (playbooks/group_vars/all.yml).

Each case changes one port or one unit name there and renders every consumer with Ansible's own templating: the
roles' configs (OpenClaw, ThreadWeaver, MCP, the LED watcher, the exporters, Prometheus), the firewall rules the
roles ask the base role for, the health gates and the roles' own unit files. A consumer that kept a copy of the
old value fails here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.ansible_render import APPLIANCE_DEFAULTS, REPO, Node

ROLES = ["base", "leds", "mcp_servers", "threadweaver", "openclaw", "exporters", "prometheus"]


def services(**changes: dict[str, Any]) -> dict[str, Any]:
    """The map of playbooks/group_vars/all.yml with ``changes`` merged into its entries."""
    written = yaml.safe_load(APPLIANCE_DEFAULTS.read_text())["appliance_services_defaults"]
    changed = copy.deepcopy(written)
    for name, values in changes.items():
        changed[name].update(values)
    return changed


def claw(**changes: dict[str, Any]) -> Node:
    # An agent that reaches cloud models through ThreadWeaver's gateway: OpenClaw's config then names its URL.
    agents = [{"id": "main"}, {"id": "capped", "gateway_model": "openai/gpt-4o-mini"}]
    return Node(ROLES, appliance_services_defaults=services(**changes), openclaw_agents=agents)


def openclaw_config(node: Node) -> str:
    return json.dumps(json.loads(node.template("openclaw", "openclaw.json.j2", __openclaw_token="t")))


def firewall_rule(node: Node, role: str, tasks_file: str, name: str) -> str:
    """The nftables rule the role's task asks the base role to write (allow.nft.j2 with the task's item)."""
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks" / tasks_file).read_text())
    for task in tasks:
        rules = task.get("vars", {}).get("base_firewall_rules") or []
        for rule in rules:
            if rule["name"] == name:
                item = {key: node.value(value) if "{{" in str(value) else value for key, value in rule.items()}
                return node.template("base", "allow.nft.j2", item=item)
    raise AssertionError(f"no firewall rule {name} in roles/{role}/tasks/{tasks_file}")


def gate_url(node: Node, gate: str) -> str:
    task = yaml.safe_load((REPO / "playbooks" / "tasks" / "gates" / f"{gate}.yml").read_text())[0]
    return node.value(task["ansible.builtin.uri"]["url"], item="query")


def test_the_defaults_render_the_wiring_every_service_had():
    """Behaviour unchanged: the map's defaults give each consumer the ports and units it had before."""
    node = claw()
    mcp = yaml.safe_load(node.template("mcp_servers", "mcp.yml.j2"))
    assert {name: server["port"] for name, server in mcp["servers"].items()} == {
        "leds": 8701,
        "system": 8702,
        "crush": 8703,
        "time": 8704,
        "files": 8705,
    }
    assert mcp["metrics_port"] == 8709
    assert "claw-mcp.service" in mcp["servers"]["system"]["allowed_units"]
    assert "claw-mcp.service" not in mcp["servers"]["system"]["restartable_units"]
    threadweaver = yaml.safe_load(node.template("threadweaver", "config.yml.j2"))
    assert threadweaver["port"] == 8600
    assert threadweaver["mcp"]["servers"]["time"] == {"url": "http://127.0.0.1:8704/mcp", "approval": "annotations"}
    assert threadweaver["providers"]["crush"]["base_url"] == "http://10.89.77.11:8080/v1"
    openclaw = openclaw_config(node)
    assert "https://127.0.0.1:8600/v1" in openclaw
    assert "http://127.0.0.1:8705/mcp" in openclaw
    watcher = yaml.safe_load(node.template("leds", "leds-watcher.yml.j2"))
    assert set(watcher["units"]) == {
        "claw-leds.service",
        "claw-mcp.service",
        "openclaw.service",
        "threadweaver.service",
        "prometheus.service",
    }
    assert gate_url(node, "threadweaver") == "https://127.0.0.1:8600/healthz"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"threadweaver": {"port": 9600}}, "9600"),
        ({"mcp": {"servers": {"leds": 9701, "system": 8702, "crush": 8703, "time": 8704, "files": 8705}}}, "9701"),
    ],
    ids=["threadweaver-port", "mcp-leds-port"],
)
def test_a_port_changed_in_the_map_reaches_every_consumer(change: dict[str, Any], expected: str):
    node = claw(**change)
    threadweaver = yaml.safe_load(node.template("threadweaver", "config.yml.j2"))
    openclaw = openclaw_config(node)
    mcp = yaml.safe_load(node.template("mcp_servers", "mcp.yml.j2"))
    if "threadweaver" in change:
        assert threadweaver["port"] == 9600
        assert "https://127.0.0.1:9600/v1" in openclaw and ":8600" not in openclaw
        assert "dport 9600 accept" in firewall_rule(node, "threadweaver", "service.yml", "threadweaver")
        assert gate_url(node, "threadweaver") == "https://127.0.0.1:9600/healthz"
    else:
        assert mcp["servers"]["leds"]["port"] == 9701
        assert threadweaver["mcp"]["servers"]["leds"]["url"] == "http://127.0.0.1:9701/mcp"
        assert "http://127.0.0.1:9701/mcp" in openclaw and ":8701" not in openclaw
    assert expected in openclaw


def test_an_exporter_port_changed_in_the_map_reaches_prometheus_and_the_firewall():
    node = claw(claw_exporter={"port": 9910})
    prometheus = yaml.safe_load(node.template("prometheus", "prometheus.yml.j2"))
    claw_job = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "claw")
    assert claw_job["static_configs"][0]["targets"] == ["10.89.77.10:9910"]
    assert "dport 9910 accept" in firewall_rule(node, "exporters", "claw.yml", "claw-exporter")
    assert node.value("exporters_claw_port") == 9910


def test_a_unit_renamed_in_the_map_reaches_every_consumer():
    node = claw(threadweaver={"unit": "weaver.service"})
    mcp = yaml.safe_load(node.template("mcp_servers", "mcp.yml.j2"))["servers"]["system"]
    assert "weaver.service" in mcp["allowed_units"] and "threadweaver.service" not in mcp["allowed_units"]
    assert "weaver.service" in mcp["restartable_units"]
    polkit = node.template("mcp_servers", "50-claw-mcp.rules.j2")
    assert '"weaver.service"' in polkit and "threadweaver.service" not in polkit
    exporter = yaml.safe_load(node.template("exporters", "claw-exporter.yml.j2"))
    assert "weaver.service" in json.dumps(exporter) and "threadweaver.service" not in json.dumps(exporter)
    assert "weaver" in node.template("exporters", "prometheus-node-exporter.default.j2")
    watcher = yaml.safe_load(node.template("leds", "leds-watcher.yml.j2"))
    assert "weaver.service" in watcher["units"] and "threadweaver.service" not in watcher["units"]
    # The role installs and runs the unit under the new name.
    assert node.value("_threadweaver_unit") == "weaver.service"
    service_tasks = (REPO / "roles/threadweaver/tasks/service.yml").read_text()
    assert "/etc/systemd/system/{{ _threadweaver_unit }}" in service_tasks


def test_no_role_keeps_a_copy_of_a_port_or_unit_of_the_map():
    """Role defaults, vars, tasks, templates and the playbooks name the map's ports and units only through it."""
    written = yaml.safe_load(APPLIANCE_DEFAULTS.read_text())["appliance_services_defaults"]
    ports = {str(entry["port"]) for entry in written.values() if "port" in entry}
    ports |= {str(port) for port in written["mcp"]["servers"].values()}
    # Units of Debian's packages, named by the packages themselves (and by no role).
    units = {entry["unit"] for entry in written.values()} - {"prometheus.service", "prometheus-node-exporter.service"}
    offenders = []
    paths = [
        *REPO.glob("roles/*/defaults/*.yml"),
        *REPO.glob("roles/*/vars/*.yml"),
        *REPO.glob("roles/*/tasks/*.yml"),
        *REPO.glob("roles/*/handlers/*.yml"),
        *REPO.glob("roles/*/templates/*.j2"),
        *REPO.glob("playbooks/**/*.yml"),
    ]
    for path in paths:
        if path == APPLIANCE_DEFAULTS:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            found = [port for port in ports if f":{port}" in code or f": {port}" in code or f"port {port}" in code]
            found += [unit for unit in units if unit in code.replace(f"{unit}.j2", "")]
            if found:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {', '.join(found)}")
    assert offenders == []


def test_a_pulled_run_checks_configs_with_the_claw_apps_python():
    """In pull mode the node is its own controller and Ansible's venv has no claw package: the pulled run is told
    to run the services' own checkers (appliance_controller_python) with the claw apps' venv."""
    node = Node(["pull"], pull_repo_url="https://git.example/c.git", pull_ref="v1")
    script = node.template("pull", "claw-pull.sh.j2")
    assert "--extra-vars appliance_controller_python=/opt/claw/current/venv/bin/python" in script


def test_the_swarm_mcp_server_ports_changed_in_the_map_reach_its_unit_config_and_openclaw():
    """The supervisor agent's MCP server (roles/swarm): its ports and unit come from appliance_services.swarm."""
    workers = [{"name": "research", "model": "openai/gpt-4o-mini"}]
    change = {"mcp_port": 9706, "mcp_metrics_port": 9710, "mcp_unit": "swarm-mcp.service"}
    node = Node([*ROLES, "swarm"], appliance_services_defaults=services(swarm=change), swarm_workers=workers,
                claw_apps_venv="/opt/claw/current/venv")  # fmt: skip
    config = yaml.safe_load(node.template("swarm", "mcp-swarm.yml.j2"))
    assert config["servers"]["swarm"]["port"] == 9706 and config["metrics_port"] == 9710
    unit = node.template("swarm", "claw-mcp-swarm.service.j2")
    assert "SocketBindAllow=tcp:9706\nSocketBindAllow=tcp:9710\n" in unit and "8706" not in unit
    assert node.value("_swarm_mcp_unit") == "swarm-mcp.service"
    openclaw = json.loads(node.template("openclaw", "openclaw.json.j2", __openclaw_token="t"))
    assert openclaw["mcp"]["servers"]["swarm"]["url"] == "http://127.0.0.1:9706/mcp"
    # No worker may take them, and the console endpoint follows ThreadWeaver's port.
    assert {9706, 9710} <= set(node.value("_swarm_service_ports"))
    moved = Node([*ROLES, "swarm"], appliance_services_defaults=services(threadweaver={"port": 9600}),
                 swarm_workers=workers)  # fmt: skip
    assert yaml.safe_load(moved.template("mcp_servers", "mcp.yml.j2"))["servers"]["time"]["console_url"] == (
        "https://127.0.0.1:9600/notifications")  # fmt: skip
    assert moved.value("_swarm_supervisor_settings")["console_notify_url"] == "https://127.0.0.1:9600/notifications"


def test_the_swarm_mcp_server_ports_collide_with_no_other_port_of_the_map():
    written = yaml.safe_load(APPLIANCE_DEFAULTS.read_text())["appliance_services_defaults"]
    others = [entry["port"] for entry in written.values() if "port" in entry] + list(written["mcp"]["servers"].values())
    swarm = written["swarm"]
    ours = [swarm["mcp_port"], swarm["mcp_metrics_port"]]
    workers = range(swarm["worker_ports"]["base"], swarm["worker_ports"]["base"] + swarm["worker_ports"]["count"])
    assert len(set(ours)) == 2 and not set(ours) & set(others) and not set(ours) & set(workers)


def test_a_cluster_with_no_route_out_still_admits_claw_and_its_network():
    """An air-gapped LAN has no gateway, so the facts have no default route (`default_ipv4` empty): crush still
    admits claw by its addresses, and OpenClaw's gateway still admits claw's own network (molecule/airgap found
    both empty, so crush dropped every scrape and request from claw)."""
    crush = Node(["llamacpp", "exporters"], host="crush")
    assert crush.value("llamacpp_claw_addresses") == ["10.89.77.10"]  # the default route's address, as before
    claw_facts = crush.variables["hostvars"]["claw"]["ansible_facts"]
    claw_facts["default_ipv4"] = {}
    claw_facts["all_ipv4_addresses"] = ["10.89.77.10", "192.168.40.2"]
    assert crush.value("llamacpp_claw_addresses") == ["10.89.77.10", "192.168.40.2"]
    assert crush.value("exporters_claw_addresses") == ["10.89.77.10", "192.168.40.2"]

    claw = Node(["openclaw"], host="claw")
    facts = claw.variables["ansible_facts"]
    facts["default_ipv4"] = {}
    facts["interfaces"] = ["lo", "eth0"]
    facts["lo"] = {"ipv4": {"address": "127.0.0.1", "network": "127.0.0.0", "prefix": "8"}}
    facts["eth0"] = {"ipv4": {"address": "10.89.77.10", "network": "10.89.77.0", "prefix": "24"}}
    assert claw.value("openclaw_allowed_sources") == ["10.89.77.0/24"]
    facts["default_ipv4"] = {"address": "192.168.1.5", "network": "192.168.1.0", "prefix": "24"}
    assert claw.value("openclaw_allowed_sources") == ["192.168.1.0/24"]
