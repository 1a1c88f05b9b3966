#!/usr/bin/python
"""Ansible module: find the Debian mirror the controller's own apt already uses."""

from __future__ import annotations

import re
from pathlib import Path

DOCUMENTATION = r"""
module: host_apt_mirror
short_description: Find the Debian archive mirror configured in the host's apt sources
description:
  - Reads one-line C(.list) and deb822 C(.sources) files and returns the mirror URI that serves
    the requested suite, so that debootstrap uses the site's own mirror and no host name is
    written into the project.
options:
  suite:
    description: Debian suite (codename) the mirror must serve.
    type: str
    required: true
  sources_dir:
    description: Root of the apt configuration to read.
    type: path
    default: /etc/apt
author: PicoCluster Claw
"""

RETURN = r"""
mirror:
  description: URI of the mirror.
  returned: success
  type: str
"""

Entry = tuple[str, list[str], list[str]]  # (uri, suites, components)


def parse_one_line(text: str) -> list[Entry]:
    """Parse classic `deb [opts] URI SUITE COMPONENT...` lines."""
    entries: list[Entry] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [arch=... signed-by=...]
        fields = line.split()
        if len(fields) >= 3:
            entries.append((fields[1], [fields[2]], fields[3:]))
    return entries


def parse_deb822(text: str) -> list[Entry]:
    """Parse deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Components:`)."""
    entries: list[Entry] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        components = fields.get("components", "").split()
        entries.extend((uri, suites, components) for uri in fields.get("uris", "").split())
    return entries


def read_entries(sources_dir: str) -> list[Entry]:
    root = Path(sources_dir)
    entries: list[Entry] = []
    one_line = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            entries += parse_one_line(path.read_text(encoding="utf-8"))
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        entries += parse_deb822(path.read_text(encoding="utf-8"))
    return entries


def pick_mirror(entries: list[Entry], suite: str) -> str | None:
    """The mirror serving `suite` itself; failing that, any Debian main archive mirror."""
    for uri, suites, components in entries:
        if suite in suites and "main" in components:
            return uri.rstrip("/")
    for uri, suites, components in entries:
        is_archive = uri.rstrip("/").endswith("/debian")
        if is_archive and "main" in components and not all(s.endswith("-security") for s in suites):
            return uri.rstrip("/")
    return None


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "suite": {"type": "str", "required": True},
            "sources_dir": {"type": "path", "default": "/etc/apt"},
        },
        supports_check_mode=True,
    )
    suite = module.params["suite"]
    mirror = pick_mirror(read_entries(module.params["sources_dir"]), suite)
    if mirror is None:
        module.fail_json(
            msg=(
                f"No Debian mirror serving '{suite}' found in {module.params['sources_dir']}: "
                "set demo_cluster_mirror to your site's Debian mirror URI."
            )
        )
    module.exit_json(changed=False, mirror=mirror)


if __name__ == "__main__":
    main()
