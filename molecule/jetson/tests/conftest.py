"""The shared testinfra helpers (tests/nodes.py), registered for this directory."""

from tests.nodes import converge, node  # noqa: F401  (fixtures, registered for this directory)
