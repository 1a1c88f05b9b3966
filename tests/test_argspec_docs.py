"""Role READMEs and defaults stay in sync with meta/argument_specs.yml."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

TOOL = Path(__file__).parent.parent / "tools/argspec_docs.py"
spec = importlib.util.spec_from_file_location("argspec_docs", TOOL)
assert spec and spec.loader
docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)


def test_every_role_in_the_repo_is_in_sync(repo):
    assert docs.main(["--check", "--roles", str(repo / "roles")]) == 0


def copy_role(repo: Path, tmp_path: Path) -> Path:
    roles = tmp_path / "roles"
    shutil.copytree(repo / "roles" / "base", roles / "base")
    return roles


def test_a_stale_readme_is_reported_then_regenerated(repo, tmp_path, capsys):
    roles = copy_role(repo, tmp_path)
    readme = roles / "base" / "README.md"
    readme.write_text(readme.read_text().replace("| `base_ssh_port` |", "| `base_ssh_prot` |"))
    assert docs.main(["--check", "--roles", str(roles)]) == 1
    assert "README.md variable table is stale" in capsys.readouterr().err
    assert docs.main(["--roles", str(roles)]) == 0
    assert "| `base_ssh_port` |" in readme.read_text()


def test_defaults_that_disagree_with_the_specs_are_reported(repo, tmp_path, capsys):
    roles = copy_role(repo, tmp_path)
    defaults = roles / "base" / "defaults" / "main.yml"
    text = defaults.read_text().replace("base_ssh_port: 22", "base_ssh_port: 2222")
    defaults.write_text(text + "base_undocumented: 1\n")
    assert docs.main(["--check", "--roles", str(roles)]) == 1
    err = capsys.readouterr().err
    assert "base_ssh_port: default 22 in argument_specs, 2222 in defaults" in err
    assert "base_undocumented: in defaults, not in argument_specs" in err


def test_the_table_lists_every_option_with_its_default():
    spec = {
        "argument_specs": {
            "main": {
                "short_description": "Demo",
                "options": {
                    "x_port": {"type": "int", "default": 22, "description": "Port C(22)."},
                    "x_mode": {"type": "str", "choices": ["a", "b"], "required": True},
                },
            }
        }
    }
    table = docs.render_table(spec)
    assert "| `x_port` | int | `22` | Port `22`. |" in table
    assert "| `x_mode` | str |  |  Choices: `a`, `b`. **Required.** |" in table
