"""Both nodes installed from the air-gapped bundle with no route out (prepare.yml), then used.

The converge (playbooks/site.yml with appliance_bundle_dir) took every package, wheel, npm tarball, Node.js build
and model from the bundle; these checks show that the nodes still cannot reach the outside, that their Debian
packages came from the bundle's repository, and that the appliance answers: a real completion from crush's engine,
through ThreadWeaver and through OpenClaw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.nodes import SYSTEMD, busctl, openclaw_reply, thread_reply

ROOT = Path(__file__).resolve().parents[3]

APPLIANCE = yaml.safe_load((ROOT / "playbooks/group_vars/all.yml").read_text())
SERVICES = APPLIANCE["appliance_services_defaults"]
MODEL = APPLIANCE["crush_models"][0]["name"]
CONSOLE = f"https://airgap-claw:{SERVICES['threadweaver']['port']}"
BUNDLE_REPO = "/var/lib/claw/apt-bundle"
# The node's own apt sources (set aside by role base while a bundle is given), read as apt would without the bundle.
OWN_SOURCES = "-o Dir::Etc::SourceList=/etc/apt/sources.list -o Dir::Etc::SourceParts=/etc/apt/sources.list.d"


@pytest.fixture(params=["claw", "crush"])
def each_node(request):
    return request.getfixturevalue(request.param)


def test_the_nodes_have_no_route_out(each_node):
    assert each_node.check_output("ip route show default; ip -6 route show default") == ""
    # The node's own Debian mirror (its sources, set aside) cannot be reached: apt reports a connection error for
    # its indexes and fetches none (its private lists directory stays without one). The lists directory is made
    # first: without it apt stops before trying the network, which would prove nothing.
    lists = "/tmp/own-lists"
    each_node.run_expect([0], f"rm -rf {lists} && mkdir -p {lists}/partial")
    result = each_node.run(f"timeout 120 apt-get {OWN_SOURCES} -o Dir::State::Lists={lists} update")
    output = result.stdout + result.stderr
    unreachable = ("Cannot initiate the connection", "Could not connect", "Temporary failure resolving")
    assert "Err:" in output and any(reason in output for reason in unreachable), output
    assert each_node.run(f"ls {lists} | grep -c _Packages").stdout.strip() == "0", output


def test_the_nodes_only_apt_source_is_the_bundle(each_node):
    sources = each_node.check_output("apt-get indextargets --format '$(URI)' | sort -u")
    assert sources.splitlines() and all(uri.startswith(f"file:{BUNDLE_REPO}") for uri in sources.splitlines()), sources


@pytest.mark.parametrize(
    ("node_name", "package"), [("claw", "prometheus"), ("crush", "python3-packaging"), ("crush", "libgomp1")]
)
def test_packages_were_installed_from_the_bundle(request, node_name, package):
    node = request.getfixturevalue(node_name)
    assert node.package(package).is_installed
    installed = node.package(package).version
    policy = node.check_output(f"apt-cache policy {package}")
    # The installed version is the one the bundle's repository offers, and apt knows no other source for it.
    assert f"Candidate: {installed}" in policy and f"file:{BUNDLE_REPO}" in policy, policy
    listed = node.check_output(f"grep -A3 '^Package: {package}$' {BUNDLE_REPO}/Packages")
    assert f"Version: {installed}" in listed


def test_every_unit_of_each_node_runs(claw, crush):
    for host in (claw, crush):
        assert busctl(host, "call", SYSTEMD, "ListUnitsFiltered as 1 failed") == [[]]
    engine_left_out = {SERVICES["ollama"]["unit"]}  # the default engine is llama.cpp
    units = {
        host: sorted({s["unit"] for s in SERVICES.values() if s.get("node") in (name, "any")} - engine_left_out)
        for name, host in (("claw", claw), ("crush", crush))
    }
    down = [u for host, names in units.items() for u in names if not host.service(u).is_running]
    assert down == [], f"not running: {down}"


def test_a_thread_is_answered_by_crush_through_threadweaver(claw):
    thread_reply(claw, MODEL, "airgap", base=CONSOLE)


def test_openclaw_answers_through_crush(claw):
    openclaw_reply(claw, MODEL)
