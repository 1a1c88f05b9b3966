"""Doubles that run on a Molecule node, with the node's own ``python3`` (standard library only), where the real
part cannot exist here: Ollama's server binary (:mod:`ollama_server`, installed as ``bin/ollama`` of a release
archive) and a cloud model that asks for a tool on cue (:mod:`scripted_model`). The tests copy them onto a node by
path (:func:`script`); they are never imported into a test process."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def script(name: str) -> Path:
    """The file of one node double, e.g. ``script("scripted_model")``."""
    path = HERE / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no node double {name!r} in {HERE}")
    return path
