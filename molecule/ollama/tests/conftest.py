"""Make the shared testinfra helpers (molecule/shared/nodes.py) importable."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from nodes import node, scenario_playbook  # noqa: F401  (node: a fixture, registered for this directory)


@pytest.fixture
def converge():
    """Run the ollama role again with extra variables: ollama.yml, as base was converged once by converge.yml."""
    return scenario_playbook("ollama.yml")
