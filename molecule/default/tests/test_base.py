"""The two-node cluster after site.yml: what the base role promises, checked on both nodes."""

from __future__ import annotations

import re

import pytest
import testinfra

from tests.nodes import SYSTEMD, busctl

NODES = ("molecule-claw", "molecule-crush")


def test_systemd_is_running_with_no_failed_units(node):
    assert busctl(node, "get-property", SYSTEMD, "SystemState") == "running"
    assert busctl(node, "call", SYSTEMD, "ListUnitsFiltered as 1 failed") == [[]]


def test_hostname_and_local_resolution(node):
    name = node.backend.get_hostname()
    assert node.check_output("hostname") == name
    assert re.search(rf"^127\.0\.1\.1\s+{name}$", node.file("/etc/hosts").content_string, re.M)


def test_timezone_and_locale(node):
    assert node.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert node.file("/etc/default/locale").content_string.strip() == "LANG=en_US.UTF-8"
    assert "en_US.utf8" in node.check_output("locale -a")


def test_service_account_cannot_log_in(node):
    user = node.user("claw")
    assert user.exists and user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000
    home = node.file("/var/lib/claw")
    assert home.user == "claw" and home.mode == 0o750


def test_journal_is_bounded(node):
    conf = node.file("/etc/systemd/journald.conf.d/picocluster-claw.conf")
    assert conf.contains("^SystemMaxUse=256M$")


def test_time_sync_is_enabled(node):
    assert node.service("systemd-timesyncd").is_enabled


def test_ssh_is_hardened_and_running(node):
    assert node.service("ssh").is_running
    effective = node.check_output("sshd -T")
    assert "permitrootlogin without-password" in effective
    assert "x11forwarding no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert "maxauthtries 3" in effective


def test_zram_swap_is_configured(node):
    assert node.package("systemd-zram-generator").is_installed
    assert node.file("/etc/systemd/zram-generator.conf").contains("^zram-size = min")


def test_pip_and_npm_trust_the_system_bundle(node):
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert node.file("/etc/pip.conf").contains(f"^cert = {bundle}$")
    assert node.file("/etc/npmrc").contains(f"^cafile={bundle}$")


def test_firewall_drops_by_default(node):
    assert node.service("nftables").is_enabled
    ruleset = node.check_output("nft list table inet picocluster_claw")
    assert "policy drop" in ruleset
    assert 'tcp dport 22 accept comment "ssh"' in ruleset


@pytest.mark.parametrize(("listener", "client"), [NODES, NODES[::-1]])
def test_an_unlisted_port_is_refused_from_the_other_node(listener, client):
    """A service on a port no rule admits answers on loopback but not across the network."""
    server = testinfra.get_host(f"nsenter://{listener}")
    other = testinfra.get_host(f"nsenter://{client}")
    server.check_output("systemd-run --unit=probe-9999 --collect python3 -m http.server 9999 --bind 0.0.0.0")
    try:
        server.run_expect(
            [0], "timeout 10 sh -c 'until curl -sf http://127.0.0.1:9999/ -o /dev/null; do sleep 0.2; done'"
        )
        blocked = other.run(f"curl -s --max-time 3 -o /dev/null http://{listener}:9999/")
        assert blocked.rc == 28, f"expected a timeout (dropped), got rc={blocked.rc}"
        ssh = other.run(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{listener}/22 && head -c 4 <&3'")
        assert ssh.stdout == "SSH-", "SSH should be admitted by the firewall"
    finally:
        server.run("systemctl stop probe-9999")
