"""Fixtures of the air-gapped scenario: the shared helpers (tests/nodes.py) and both nodes by name."""

import pytest
import testinfra

from tests.nodes import node  # noqa: F401  (a fixture, registered for this directory)


@pytest.fixture(scope="module")
def claw():
    return testinfra.get_host("nsenter://airgap-claw")


@pytest.fixture(scope="module")
def crush():
    return testinfra.get_host("nsenter://airgap-crush")
