"""Fixtures of the workstation scenario: the shared helpers (tests/nodes.py) and the one machine by name."""

import pytest
import testinfra

from tests.nodes import node  # noqa: F401  (a fixture, registered for this directory)


@pytest.fixture(scope="module")
def workstation():
    return testinfra.get_host("nsenter://molecule-local")
