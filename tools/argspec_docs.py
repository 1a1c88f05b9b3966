#!/usr/bin/env python3
"""Role docs from meta/argument_specs.yml, the single source of truth.

Writes each role README's variable table between the markers below, and with --check fails
when a README, or a role's defaults/main.yml, has drifted from its argument specs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

BEGIN = "<!-- BEGIN_ARGUMENT_SPECS -->"
END = "<!-- END_ARGUMENT_SPECS -->"
ROLES = Path(__file__).resolve().parent.parent / "roles"


def _cell(value: Any) -> str:
    """One table cell: YAML flow style for data, Ansible C() markup as code."""
    if isinstance(value, str):
        text = value if value else '""'
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000)
        text = text.strip().removesuffix("...").strip()
    text = re.sub(r"\b[CI]\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _description(option: dict[str, Any]) -> str:
    desc = option.get("description", "")
    text = " ".join(desc) if isinstance(desc, list) else str(desc)
    if option.get("choices"):
        text += " Choices: " + ", ".join(f"`{c}`" for c in option["choices"]) + "."
    if option.get("required"):
        text += " **Required.**"
    return _cell(text)


def render_table(spec: dict[str, Any]) -> str:
    """Markdown for every entry point: a heading, its summary and a variable table."""
    parts: list[str] = []
    for entry, body in spec["argument_specs"].items():
        parts.append(f"### Entry point `{entry}`\n\n{_cell(body.get('short_description', ''))}\n")
        parts.append("| Variable | Type | Default | Description |")
        parts.append("|---|---|---|---|")
        for name, option in sorted((body.get("options") or {}).items()):
            kind = option.get("type", "str")
            if kind == "list" and "elements" in option:
                kind = f"list of {option['elements']}"
            default = f"`{_cell(option['default'])}`" if "default" in option else ""
            parts.append(f"| `{name}` | {kind} | {default} | {_description(option)} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def splice(readme: str, table: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README lacks the markers {BEGIN} / {END}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def defaults_drift(role: Path, spec: dict[str, Any]) -> list[str]:
    """Keys or default values of each entry point's defaults file that disagree with its argument specs.

    The ``main`` entry point reads defaults/main.yml; another entry point ``x`` (``include_role`` with
    ``tasks_from: x, defaults_from: x``) reads defaults/x.yml, checked when it exists.
    """
    problems = []
    for entry, body in spec["argument_specs"].items():
        defaults_file = role / "defaults" / f"{entry}.yml"
        if entry != "main" and not defaults_file.exists():
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        options = body.get("options") or {}
        where = "" if entry == "main" else f" ({entry})"
        problems += [f"{k}: in defaults{where}, not in argument_specs" for k in defaults if k not in options]
        for key, option in options.items():
            if option.get("required"):
                continue
            if key not in defaults:
                problems.append(f"{key}: in argument_specs{where}, not in defaults")
            elif option.get("default") != defaults[key]:
                problems.append(
                    f"{key}: default {option.get('default')!r} in argument_specs{where}, {defaults[key]!r} in defaults"
                )
    return problems


def process(role: Path, check: bool) -> list[str]:
    spec_file = role / "meta" / "argument_specs.yml"
    if not spec_file.exists():
        return [f"{role.name}: no meta/argument_specs.yml"]
    spec = yaml.safe_load(spec_file.read_text())
    problems = [f"{role.name}: {p}" for p in defaults_drift(role, spec)]
    readme_file = role / "README.md"
    if not readme_file.exists():
        return [*problems, f"{role.name}: no README.md"]
    readme = readme_file.read_text()
    try:
        wanted = splice(readme, render_table(spec))
    except ValueError as error:
        return [*problems, f"{role.name}: {error}"]
    if wanted != readme:
        if check:
            problems.append(f"{role.name}: README.md variable table is stale (run `make docs`)")
        else:
            readme_file.write_text(wanted)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail on drift instead of writing")
    parser.add_argument("--roles", type=Path, default=ROLES, help="roles directory")
    args = parser.parse_args(argv)
    problems: list[str] = []
    for role in sorted(p for p in args.roles.iterdir() if (p / "tasks").is_dir()):
        problems += process(role, args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
