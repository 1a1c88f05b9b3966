"""The claw apps release on both nodes, the exporters, and the models playbook."""

from __future__ import annotations

from pathlib import Path

import pytest
import testinfra

from tests.nodes import run_playbook

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
MODELS_DIR = "/var/lib/llamacpp/models"


def test_release_is_installed_side_by_side_with_a_current_link(node):
    current = node.check_output("readlink /opt/claw/current")
    assert current.startswith("/opt/claw/releases/0.1.0-"), current
    assert node.file(f"{current}/.installed").content_string.strip() == current.rsplit("/", 1)[1]
    assert node.check_output("claw --version") == "claw 0.1.0"
    # Every dependency came from the hash-verified wheelhouse and the set is complete.
    node.run_expect([0], f"{current}/venv/bin/pip check")
    requirements = node.file(f"{current}/dist/requirements.txt").content_string
    assert "--hash=sha256:" in requirements
    assert "mcp==" in requirements


def test_node_exporter_runs_with_the_textfile_collector(node):
    assert node.service("prometheus-node-exporter").is_running
    metrics = node.check_output("curl -fsS http://127.0.0.1:9100/metrics")
    assert "node_exporter_build_info" in metrics
    assert 'collector="textfile"' in metrics


def test_crush_exporter_is_hardened_and_reports_the_engine(crush):
    assert crush.service("claw-crush-exporter").is_running
    props = crush.check_output("systemctl show claw-crush-exporter -p User -p ProtectSystem -p ExecStart")
    assert "User=claw-exporter" in props
    assert "ProtectSystem=strict" in props
    assert "/opt/claw/releases/" in props


def test_claw_scrapes_both_exporters_over_the_lan(claw):
    metrics = claw.check_output("curl -fsS --max-time 5 http://molecule-crush:9811/metrics")
    assert 'crush_engine_up{engine="llamacpp"} 1.0' in metrics
    assert 'crush_model_loaded_info{model="gemma3-270m"} 1.0' in metrics
    # No Jetson here: the sysfs sources say so instead of reporting zeros.
    assert 'crush_source_available{source="gpu"} 0.0' in metrics
    assert not [line for line in metrics.splitlines() if line.startswith("crush_gpu_load_ratio")]
    assert "node_exporter_build_info" in claw.check_output("curl -fsS --max-time 5 http://molecule-crush:9100/metrics")


# The outsider is a bare image: a TCP connect with the standard library, which times out when the firewall drops.
CONNECT = "import socket, sys; socket.create_connection(('molecule-crush', int(sys.argv[1])), timeout=3)"


@pytest.mark.parametrize("port", [9100, 9811])
def test_an_outsider_cannot_scrape(claw, port):
    outsider = testinfra.get_host("nsenter://molecule-outsider")
    result = outsider.run("python3 -c %s %s", CONNECT, str(port))
    assert result.rc != 0
    assert "timed out" in result.stderr, result.stderr
    # The same connect from claw succeeds, so the refusal is the firewall's, not a closed port.
    claw.run_expect([0], "python3 -c %s %s", CONNECT, str(port))


def test_models_playbook_is_a_no_op_and_lists_the_models():
    run = run_playbook(PLAYBOOKS / "models.yml", {})
    assert run.rc == 0, run.output
    assert run.changed == 0, run.output
    assert "serves: ['gemma3-270m']" in run.text, run.output


def test_models_playbook_prunes_a_model_no_longer_listed(crush):
    stray = f"{MODELS_DIR}/retired-0123456789ab.gguf"
    crush.run_expect([0], f"printf GGUF > {stray}")
    run = run_playbook(PLAYBOOKS / "models.yml", {})
    assert run.rc == 0, run.output
    assert not crush.file(stray).exists
    assert crush.check_output(f"ls {MODELS_DIR}").split() == ["gemma3-270m-a5fd3b62230a.gguf"]
