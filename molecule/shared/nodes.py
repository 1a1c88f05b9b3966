"""Shared by the scenarios' testinfra suites.

Molecule hands testinfra one Ansible-backed `host` per node; running every command through
Ansible costs a second or more, so `node` talks to the same container through podman directly.
"""

from __future__ import annotations

import json

import pytest
import testinfra


@pytest.fixture
def node(host):
    return testinfra.get_host(f"podman://{host.backend.get_hostname()}")


def busctl(node, *args: str):
    """systemd's D-Bus answer as data (busctl --json=short)."""
    return json.loads(node.check_output("busctl --json=short " + " ".join(args)))["data"]


SYSTEMD = "org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager"
