#!/usr/bin/python
"""Which Ollama release archives a node needs, and the sha256 each must match (the ollama role's preflight).

Runs on the controller. The pure functions below are what the role's tests call directly:

- ``archives(arch, l4t)``: the archives a node unpacks, the main one first. On a Jetson (L4T R35 or R36,
  read from /etc/nv_tegra_release) the JetPack archive follows: Ollama's install script extracts it over the same
  prefix.
- ``sha256sums(text)``: the release's ``sha256sum.txt`` (``<sha256>  ./<archive>`` per line, as ``sha256sum``
  writes it) as ``{archive: sha256}``. A line that is not such a line, or an archive listed twice with different
  values, is an error: a damaged or tampered file verifies nothing.
- ``checksum_plan(names, pinned, published)``: for each archive, the sha256 it is checked against and where it
  comes from. A value pinned in the repository (or in ``ollama_checksums``) is preferred; the release's
  ``sha256sum.txt`` fills the others. Archives neither names are ``missing``; a published value that disagrees
  with a pinned one is a ``conflict`` (one of the two is wrong, so nothing installs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
module: ollama_release
short_description: The Ollama archives a node needs and the sha256 each is checked against
description:
  - Chooses the release archives from the node's architecture and L4T release (a Jetson also gets the JetPack 5 or 6
    archive, unpacked over the main one), and the sha256 of each, a pinned value first, then the line of the
    release's own C(sha256sum.txt).
  - Reads nothing and changes nothing; fails on a C(sha256sum.txt) with a line that is not a checksum line.
options:
  arch:
    description: Ollama's name of the node's architecture (C(amd64), C(arm64)).
    type: str
    required: true
  l4t_release:
    description:
      - "The node's C(/etc/nv_tegra_release) (C(# R36 (release), REVISION: 4.3, ...)); empty off a Jetson."
    type: str
    default: ""
  pinned:
    description: "The sha256 pinned for this version, C({archive: sha256})."
    type: dict
    default: {}
  sums:
    description: The release's C(sha256sum.txt), when it was read.
    type: str
  sums_source:
    description: Where C(sums) was read from, for the messages.
    type: str
    default: sha256sum.txt
"""

RETURN = r"""
archives:
  description: The archives the node unpacks, the main one first.
  type: list
  elements: str
  returned: always
l4t: {description: The L4T major release (C(36)), empty off a Jetson., type: str, returned: always}
jetpack:
  description: The JetPack generation of the JetPack archive (C(6)), empty without one.
  type: str
  returned: always
checksums: {description: The sha256 each archive is checked against., type: dict, returned: always}
sources: {description: Where each value comes from (C(pinned), C(sha256sum.txt))., type: dict, returned: always}
missing:
  description: Archives without a pinned value or a line in C(sums).
  type: list
  elements: str
  returned: always
conflicts:
  description: Archives whose pinned value C(sums) contradicts.
  type: list
  elements: str
  returned: always
"""

# sha256sum's output: the hash, a space, ' ' (text) or '*' (binary mode), the name (Ollama's carry a './').
_SUM_LINE = re.compile(r"^(?P<sha>[0-9A-Fa-f]{64}) [ *](?:\./)?(?P<name>\S+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# L4T major release -> JetPack generation Ollama publishes an archive for.
_JETPACK = {"35": "5", "36": "6"}


def jetpack(l4t: Any) -> str:
    """The JetPack generation ('5', '6') of an L4T major release, '' when Ollama has no archive for it."""
    return _JETPACK.get(str(l4t or "").strip(), "")


def archives(arch: str, l4t: Any = "") -> list[str]:
    """The release archives a node of ``arch`` (amd64, arm64) on L4T ``l4t`` ('' off a Jetson) unpacks."""
    if not arch or not re.fullmatch(r"[a-z0-9_]+", str(arch)):
        raise ValueError(f"not an architecture name: {arch!r}")
    names = [f"ollama-linux-{arch}.tar.zst"]
    generation = jetpack(l4t)
    if generation:
        names.append(f"ollama-linux-{arch}-jetpack{generation}.tar.zst")
    return names


def sha256sums(text: Any, source: str = "sha256sum.txt") -> dict[str, str]:
    """``{archive: sha256}`` from a release's sha256sum.txt; a malformed or contradictory line is an error."""
    if not isinstance(text, str):
        raise ValueError(f"{source}: expected the file's text, got {type(text).__name__}")
    sums: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if not match:
            raise ValueError(
                f"{source} line {number} is not '<sha256>  <archive>' as sha256sum writes it: {line[:120]!r}"
            )
        name, sha = match["name"], match["sha"].lower()
        if sums.get(name, sha) != sha:
            raise ValueError(f"{source} lists {name} twice with different sha256 ({sums[name]}, {sha})")
        sums[name] = sha
    return sums


def checksum_plan(
    names: Iterable[str], pinned: Mapping[str, str] | None, published: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What each archive is checked against: ``checksums`` and ``sources`` per archive, ``missing``, ``conflicts``."""
    pinned = dict(pinned or {})
    published = {name: str(sha).lower() for name, sha in (published or {}).items()}
    checksums: dict[str, str] = {}
    sources: dict[str, str] = {}
    missing: list[str] = []
    conflicts: list[str] = []
    for name in names:
        if name in pinned:
            sha = str(pinned[name]).lower()
            if not _SHA256.match(sha):
                raise ValueError(f"the sha256 pinned for {name} is not 64 hex digits: {pinned[name]!r}")
            checksums[name], sources[name] = sha, "pinned"
            if name in published and published[name] != sha:
                conflicts.append(name)
        elif name in published:
            checksums[name], sources[name] = published[name], "sha256sum.txt"
        else:
            missing.append(name)
    return {"checksums": checksums, "sources": sources, "missing": missing, "conflicts": conflicts}


def l4t_major(release_line: str) -> str:
    """'36' from L4T's "# R36 (release), REVISION: 4.3, ..."; '' when there is none."""
    match = re.search(r"R([0-9]+)", release_line or "")
    return match.group(1) if match else ""


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "arch": {"type": "str", "required": True},
            "l4t_release": {"type": "str", "default": ""},
            "pinned": {"type": "dict", "default": {}},
            "sums": {"type": "str"},
            "sums_source": {"type": "str", "default": "sha256sum.txt"},
        },
        supports_check_mode=True,
    )
    params = module.params
    l4t = l4t_major(params["l4t_release"])
    try:
        names = archives(params["arch"], l4t)
        published = sha256sums(params["sums"], params["sums_source"]) if params["sums"] is not None else {}
        plan = checksum_plan(names, params["pinned"], published)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, archives=names, l4t=l4t, jetpack=jetpack(l4t), **plan)


if __name__ == "__main__":
    main()
