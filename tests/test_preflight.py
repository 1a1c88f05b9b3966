"""Every role rejects bad variables before it changes anything.

Each case runs the role in check mode on the controller with one bad variable and expects the
play to fail with a message naming the problem, and with nothing changed.
"""

from __future__ import annotations

import re

import pytest

PLAY = """
- name: Preflight probe
  hosts: all
  gather_facts: true
  gather_subset: [min]
  roles:
    - role: {role}
"""

# ThreadWeaver's checks after its release check passes, with a valid crush provider to vary from.
TW_CRUSH = {"crush": {"kind": "crush", "base_url": "http://crush:8080/v1", "engine": "llamacpp"}}
TW = {"claw_apps_venv": "/opt/claw/current/venv", "threadweaver_providers": TW_CRUSH}
# The MCP servers' checks with a valid crush bridge to vary from (no crush node in this one-host inventory).
MCP = {
    "claw_apps_venv": "/opt/claw/current/venv",
    "mcp_servers_crush_engine_url": "http://crush:8080",
    "mcp_servers_crush_exporter_url": "http://crush:9811/metrics",
}
# The swarm's checks with a worker and the releases it runs from, to vary from.
SWARM = {
    "claw_apps_venv": "/opt/claw/current/venv",
    "openclaw_install_dir": "/opt/openclaw",
    "swarm_workers": [{"name": "research", "model": "openai/gpt-4o-mini", "cap_usd": 1}],
}

CASES = [
    # (role, variables, text the error must contain)
    ("base", {"base_ssh_port": "twenty-two"}, "base_ssh_port"),
    ("pull", {"pull_repo_url": "https://git.example/claw.git", "pull_ref": "main"}, "not a branch"),
    ("pull", {"pull_repo_url": "https://git.example/claw.git", "pull_ref": "1a2b3c"}, "not a branch"),
    ("pull", {"pull_repo_url": "", "pull_ref": "v1.4.0"}, "pull_repo_url must be set"),
    ("base", {"base_firewall_enabled": "sometimes"}, "base_firewall_enabled"),
    ("base", {"base_firewall_ssh_sources": ["10.0.0.300/24"]}, "Malformed network address"),
    ("base", {"base_firewall_allow": [{"name": "x", "port": 80, "sources": ["fd00::zz/8"]}]},
     "Malformed network address"),
    ("base", {"base_firewall_allow": [{"name": "bad name", "port": 80, "sources": ["10.0.0.1"]}]},
     "Firewall rule names"),
    ("base", {"base_firewall_allow": [{"name": "x", "port": 70000, "sources": ["10.0.0.1"]}]},
     "ports 1-65535"),
    ("base", {"base_hostname": "Bad_Host"}, "base_hostname must be"),
    ("base", {"base_timezone": "Mars/Olympus Mons"}, "base_timezone an"),
    ("demo_cluster", {"demo_cluster_subnet": "10.89.77.0/33x"}, "demo_cluster_subnet must be"),
    ("demo_cluster", {"demo_cluster_nodes": [{"name": "claw", "ipv4": "10.89.77.999x"}]},
     "demo_cluster_subnet must be"),
    ("demo_cluster", {"demo_cluster_state": "sideways"}, "demo_cluster_state"),
    ("raspberrypi", {"raspberrypi_pcie_gen": 4}, "raspberrypi_pcie_gen"),
    ("llamacpp", {"llamacpp_cmake_args": "-DGGML_CUDA=on -DGGML_NATIVE=ON"}, "asks for a native build"),
    ("llamacpp", {"llamacpp_cmake_args": "-DCMAKE_C_FLAGS=-march=native"}, "asks for a native build"),
    ("llamacpp", {"llamacpp_build_timeout_s": 5}, "llamacpp_build_timeout_s must be at least 60"),
    ("ollama", {"ollama_host": "0.0.0.0:99999"}, "ollama_host must be ADDRESS:PORT"),
    ("ollama", {"ollama_allowed_sources": ["10.0.0.0/99"]}, "every admitted source"),
    ("ollama", {"ollama_version": "v0.32.9"}, "ollama_version must be a release number"),
    ("ollama", {"ollama_version": "0.0.9"}, "no verified sha256 is pinned"),
    ("ollama", {"ollama_keep_releases": 0}, "ollama_keep_releases must be at least 1"),
    ("llamacpp", {"llamacpp_port": "eighty"}, "llamacpp_port"),
    ("llamacpp", {"llamacpp_keep_releases": 0}, "llamacpp_keep_releases must be at least 1"),
    ("llamacpp", {"llamacpp_host": "0.0.0.256"}, "llamacpp_host must be an IP address"),
    ("llamacpp", {"llamacpp_allowed_sources": ["192.168.1.0/33"]}, "every admitted source"),
    ("llamacpp", {"llamacpp_models": [{"name": "m", "url": "http://models.example.test/m.gguf"}]},
     "a 64-hex sha256"),
    ("llamacpp", {"llamacpp_models": [{"name": "m", "path": "/m.gguf", "url": "http://x.test/m"}]},
     "exactly one of"),
    ("jetson", {"jetson_clocks_enabled": "maybe"}, "jetson_clocks_enabled"),
    ("claw_apps", {"claw_apps_keep_releases": 0}, "claw_apps_keep_releases must be at least 1"),
    ("claw_apps", {"claw_apps_extras": ["gpu"]}, "claw_apps_extras"),
    ("exporters", {"exporters_crush_port": 9100}, "Exporter ports must be distinct"),
    ("exporters", {"exporters_allowed_sources": ["10.0.0.0/40"]}, "every scraper an"),
    ("exporters", {"exporters_crush_llamacpp_config": "etc/llamacpp/config.json"}, "an absolute path"),
    ("leds", {"leds_socket": "/tmp/leds.sock"}, "leds_socket must be a file in /run/claw-leds"),
    ("leds", {"leds_backend": "neopixel"}, "leds_backend"),
    # The claw exporter's and the LED watcher's own checkers (`--check`) on the controller, before any change.
    ("exporters", {"claw_apps_venv": "/opt/claw/current/venv", "exporters_claw_enabled": True,
                   "exporters_currency": "EURO"},
     "The claw exporter configuration is refused by its own checker"),
    ("exporters", {"claw_apps_venv": "/opt/claw/current/venv", "exporters_claw_enabled": True,
                   "exporters_claw_units": ["-bad unit"]}, "units.0\n  String should match pattern"),
    ("leds", {"claw_apps_venv": "/opt/claw/current/venv", "leds_watcher_crush_url": "crush:8080/health"},
     "crush_url: expected an http:// or https:// URL, got 'crush:8080/health'"),
    ("leds", {"claw_apps_venv": "/opt/claw/current/venv", "leds_watcher_interval": 0},
     "interval: Input should be greater than or equal to 0.5"),
    # The MCP servers' own checker (`claw mcp check`) on the controller, before anything changes.
    ("mcp_servers", {**MCP, "mcp_servers_restartable_units": ["ssh.service"]},
     "restartable_units must also be in allowed_units: ssh.service"),
    ("mcp_servers", {**MCP, "mcp_servers_ports": {"leds": 8701, "system": 8701, "crush": 8703, "time": 8704,
                                                  "files": 8705}},
     "servers leds and system share port 8701"),
    ("mcp_servers", {**MCP, "mcp_servers_crush_engine_url": "crush:8080"},
     "server crush: engine_url: Value error, expected an http:// or https:// URL with a host, got 'crush:8080'"),
    ("mcp_servers", {**MCP, "mcp_servers_restartable_units": ["claw-mcp.service"],
                     "mcp_servers_allowed_units": ["claw-mcp.service"]}, "may not restart its own unit"),
    ("nodejs", {"nodejs_version": "24"}, "nodejs_version and nodejs_npm_version must be exact versions"),
    ("nodejs", {"nodejs_version": "24.0.0"}, "No sha256 is pinned for node-linux-"),
    ("openclaw", {"openclaw_bind": "everywhere"}, "openclaw_bind"),
    ("openclaw", {"openclaw_crush_url": "http://crush:8080", "crush_models": [{"name": "m"}],
                  "openclaw_agents": [{"id": "main", "model": "nope/none"}]},
     "every agent model must name a configured provider"),
    ("prometheus", {"prometheus_retention_time": "forever"}, "prometheus_retention_time like 30d"),
    ("pki", {"pki_cluster_name": "my cluster"}, "pki_cluster_name a plain name"),
    ("firstboot", {"firstboot_hostname_prefix": "Claw_Node"}, "firstboot_hostname_prefix=Claw_Node must be"),
    ("image", {"image_node": "toaster"}, "image_node"),
    ("image", {"image_roles": ["base", "threadweaver"]}, "offline root: base"),
    ("image", {"image_grow_mib": -1}, "Bad image layout"),
    ("threadweaver", {}, "apply the claw_apps role before threadweaver"),
    ("threadweaver", {**TW, "threadweaver_providers": {**TW_CRUSH, "gpt": {"kind": "openai"}}},
     "cloud providers need a key in threadweaver_provider_keys (vault): gpt"),
    # ThreadWeaver's own validation (`python -m claw.threadweaver validate`) on the controller, before any change.
    ("threadweaver", {**TW, "threadweaver_caps": {"claude": 5}},
     "caps names providers that are not configured: claude"),
    ("threadweaver", {**TW, "threadweaver_caps": {"crush": -1}},
     "caps.crush\n  Input should be greater than or equal to 0"),
    ("threadweaver", {**TW, "threadweaver_providers": {"c": {"kind": "crush", "base_url": "crush:8080"}}},
     "crush needs base_url, an http(s) URL (got 'crush:8080')"),
    ("threadweaver", {**TW, "threadweaver_providers": {"x": {"kind": "bard", "base_url": "http://x"}}},
     "providers.x.kind\n  Input should be 'crush', 'openai', 'anthropic', 'mistral' or 'groq'"),
    ("threadweaver", {**TW, "threadweaver_listen_address": "everywhere"},
     "host\n  value is not a valid IPv4 or IPv6 address"),
    ("threadweaver", {**TW, "threadweaver_mcp_servers": {"my__tools": {"url": "http://127.0.0.1:9/mcp"}}},
     "MCP server name 'my__tools' must be an identifier without '__'"),
    ("threadweaver", {**TW, "threadweaver_gateway_clients": {"agent": {"cap_usd": 1, "providers": ["claude"]}}},
     "gateway.clients.agent.providers names providers that are not configured: claude"),
    ("threadweaver", {**TW, "threadweaver_password": "hunter2"}, "threadweaver_password must have at least 12"),
    # The swarm: a bad worker is refused before any user, directory or unit exists.
    ("swarm", {"swarm_workers": [{"name": "a", "model": "openai/gpt-4o-mini"}, {"name": "a", "model": "crush/m"}]},
     "Every worker needs a unique name"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "openai/gpt-4o-mini", "cap_usd": -1}]},
     "cap_usd a number of 0 or more"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "gpt-4o-mini"}]}, "ThreadWeaver's provider/model"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "crush/m"}, {"name": "b", "model": "crush/m", "port": 18801}]},
     "Each worker needs its own port from 18801 to 18864"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "crush/m", "port": 18789}]}, "Each worker needs its own port"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "crush/m", "outbound": ["10.0.0.0/40"]}]},
     "outbound addresses or CIDR networks"),
    ("swarm", {"swarm_workers": [{"name": "a", "model": "crush/m"}]}, "apply the claw_apps, threadweaver"),
    # The supervisor's own checker (`claw swarm run --check`) on the controller: a deadline over 60 s.
    ("swarm", {**SWARM, "swarm_settings": {"probe_interval": 30}},
     "The swarm supervisor's configuration is refused by its own checker"),
]  # fmt: skip


@pytest.mark.ansible
@pytest.mark.parametrize(("role", "variables", "expected"), CASES)
def test_bad_variable_fails_before_any_change(run_playbook, role, variables, expected):
    result = run_playbook(PLAY.format(role=role), variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output, output
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+).*failed=(\d+)", output)
    assert recap, output
    assert recap.group(1) == "0", "a change happened before the variables were rejected"
    assert recap.group(2) == "1"


@pytest.mark.ansible
def test_good_variables_pass_the_preflight(run_playbook):
    """The same probe with valid values gets past validation (so the cases above test something)."""
    play = """
- name: Preflight only
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run only the base preflight
      ansible.builtin.include_role:
        name: base
        tasks_from: preflight
"""
    good = {"base_firewall_ssh_sources": ["10.0.0.0/24", "fd00::/8"], "base_hostname": "claw"}
    output = run_playbook(play, good).stdout
    # The variable checks pass; the platform check after them depends on this host (CI
    # containers may lack systemd), so it is not asserted here.
    for task in (
        "Check the addresses the firewall will admit",
        "Check the firewall rule names and ports",
        "Check the hostname, time zone and locale",
    ):
        assert re.search(rf"TASK \[base : {re.escape(task)}\][^\n]*\nok: \[localhost\]", output), output


@pytest.mark.ansible
@pytest.mark.parametrize(
    ("role", "variables", "task"),
    [
        ("exporters", {"exporters_claw_enabled": True}, "Check the rendered settings with the claw exporter's own"),
        ("leds", {}, "Check the rendered settings with the watcher's own validation"),
    ],
)
def test_default_settings_pass_the_services_own_checkers(run_playbook, role, variables, task):
    """The files the roles render from their defaults are accepted by the services' checkers."""
    play = """
- name: Preflight only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run only the role's preflight
      ansible.builtin.include_role:
        name: {role}
        tasks_from: preflight
"""
    result = run_playbook(play.format(role=role), {"claw_apps_venv": "/opt/claw/current/venv", **variables})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Run the service's checker on the controller" in output, output
    assert task in output, output


@pytest.mark.ansible
def test_good_workers_pass_the_supervisors_checker_and_wait_for_their_keys(run_playbook):
    """Valid workers pass every variable check and `claw swarm run --check`; the role then wants the keys the
    threadweaver and mcp_servers roles make, and stops before any change when they are missing."""
    output = run_playbook(PLAY.format(role="swarm"), SWARM)
    text = output.stdout + output.stderr
    assert re.search(r"Check the rendered settings with the supervisor's own validation", text), text
    assert re.search(r"TASK \[base : Stop on what the checker refused\][^\n]*\nok: \[localhost\]", text), text
    assert "No key at /etc/threadweaver/keys/gateway-worker-research.key" in text, text
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", text), text


@pytest.mark.ansible
def test_no_workers_install_nothing(run_playbook):
    output = run_playbook(PLAY.format(role="swarm"), {})
    text = output.stdout + output.stderr
    assert output.returncode == 0, text
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", text), text
    assert not re.search(r"TASK \[swarm : Create each worker's user[^\n]*\n(ok|changed)", text), text


@pytest.mark.ansible
@pytest.mark.parametrize("ref", ["v1.4.0", "2026.03.1", "0123456789abcdef0123456789abcdef01234567"])
def test_pull_accepts_tags_and_commit_ids(run_playbook, ref):
    play = """
- name: Pull preflight only
  hosts: all
  gather_facts: false
  tasks:
    - name: Run only the pull preflight
      ansible.builtin.include_role:
        name: pull
      tags: [pull_preflight]
"""
    result = run_playbook(play, {"pull_repo_url": "https://git.example/claw.git", "pull_ref": ref})
    assert re.search(r"TASK \[pull : Check the pull settings\][^\n]*\nok: \[localhost\]", result.stdout), result.stdout
