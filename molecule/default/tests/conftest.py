"""Fixtures of the two-node scenario: the shared helpers (tests/nodes.py) and both nodes by name."""

import pytest
import testinfra

from tests.doubles.node import script
from tests.nodes import node  # noqa: F401  (fixtures, registered for this directory)


@pytest.fixture(scope="module")
def claw():
    return testinfra.get_host("nsenter://molecule-claw")


@pytest.fixture(scope="module")
def crush():
    return testinfra.get_host("nsenter://molecule-crush")


@pytest.fixture(scope="module")
def scripted_model(claw):
    """The scripted model double on the claw node's loopback, as a transient unit."""
    claw.run_expect([0], f"cat > /tmp/scripted_model.py <<'EOF'\n{script('scripted_model').read_text()}\nEOF")
    claw.run_expect([0], "systemd-run --unit scripted-model --collect python3 /tmp/scripted_model.py 8099")
    claw.run_expect(
        [0], "for i in $(seq 20); do curl -fsS http://127.0.0.1:8099/v1/models && exit 0; sleep 1; done; exit 1"
    )
    yield
    claw.run("systemctl stop scripted-model")
