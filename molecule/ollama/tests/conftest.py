"""Make the shared testinfra helpers (molecule/shared/nodes.py) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from nodes import converge, node  # noqa: F401  (fixtures, registered for this directory)
