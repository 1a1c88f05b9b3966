"""The shared testinfra helpers (tests/nodes.py), registered for this directory."""

import pytest

from tests.nodes import node, scenario_playbook  # noqa: F401  (node: a fixture, registered for this directory)


@pytest.fixture
def converge():
    """Run the ollama role again with extra variables: ollama.yml, as base was converged once by converge.yml."""
    return scenario_playbook("ollama.yml")
