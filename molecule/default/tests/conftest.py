"""Fixtures of the two-node scenario: the shared helpers (tests/nodes.py) and both nodes by name."""

import pytest
import testinfra

from tests.nodes import node  # noqa: F401  (fixtures, registered for this directory)


@pytest.fixture(scope="module")
def claw():
    return testinfra.get_host("nsenter://molecule-claw")


@pytest.fixture(scope="module")
def crush():
    return testinfra.get_host("nsenter://molecule-crush")
