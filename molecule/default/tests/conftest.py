"""Fixtures of the two-node scenario: the shared helpers (molecule/shared/nodes.py) and both nodes by name."""

import sys
from pathlib import Path

import pytest
import testinfra

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from nodes import node  # noqa: F401  (fixtures, registered for this directory)


@pytest.fixture(scope="module")
def claw():
    return testinfra.get_host("nsenter://molecule-claw")


@pytest.fixture(scope="module")
def crush():
    return testinfra.get_host("nsenter://molecule-crush")
