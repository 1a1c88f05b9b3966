"""Loading a repository file as a module (role modules, tools, benchmarks) without putting its folder on sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_file(path: Path, name: str) -> ModuleType:
    """``path`` imported as module ``name``, registered in sys.modules first: dataclasses and ``from name import``
    inside the module look it up there, and mutmut finds the tests that reach its functions by that name."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
