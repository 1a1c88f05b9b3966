"""The firewall's off-network counters as a node_exporter textfile: ``claw_offnet_refused_*_total{user}``.

base's ``firewall_offnet`` gives every governed service user an nftables counter ``offnet_<user>`` (its comment is
the user's name) that counts the connections refused because they left loopback, the LAN and the user's allow-list.
Reading nftables needs CAP_NET_ADMIN, which no exporter gets: a root oneshot (``claw-offnet-counters.timer``) runs
this module and node_exporter's textfile collector serves the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TABLE = ("inet", "picocluster_claw")
PREFIX = "offnet_"
# What the textfile holds (for the alert rules' checks): name -> help.
FAMILIES = {
    "claw_offnet_rules_loaded": "1 when the firewall's off-network rules are loaded.",
    "claw_offnet_refused_packets_total": "Packets a service user sent off the network and the firewall refused.",
    "claw_offnet_refused_bytes_total": "Bytes a service user sent off the network and the firewall refused.",
}


@dataclass(frozen=True)
class Refused:
    user: str
    packets: int
    bytes: int


def parse(listing: str) -> list[Refused]:
    """The ``offnet_*`` counters of ``nft -j list counters table inet picocluster_claw``'s output."""
    found = []
    for item in json.loads(listing).get("nftables", []):
        counter = item.get("counter")
        if not counter or not counter.get("name", "").startswith(PREFIX):
            continue
        user = counter.get("comment") or counter["name"].removeprefix(PREFIX)
        found.append(Refused(user, int(counter.get("packets", 0)), int(counter.get("bytes", 0))))
    return sorted(found, key=lambda r: r.user)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(refused: Iterable[Refused], *, loaded: bool) -> str:
    loaded_name = "claw_offnet_rules_loaded"
    lines = [
        f"# HELP {loaded_name} {FAMILIES[loaded_name]}",
        f"# TYPE {loaded_name} gauge",
        f"{loaded_name} {int(loaded)}",
    ]
    for unit in ("packets", "bytes"):
        name = f"claw_offnet_refused_{unit}_total"
        lines += [f"# HELP {name} {FAMILIES[name]}", f"# TYPE {name} counter"]
        lines += [f'{name}{{user="{_label(r.user)}"}} {getattr(r, unit)}' for r in refused]
    return "\n".join(lines) + "\n"


def read_counters() -> tuple[list[Refused], bool]:
    """The counters now, and whether the table holds any (False also when nft cannot list the table)."""
    done = subprocess.run(
        ["nft", "-j", "list", "counters", "table", *TABLE], capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        return [], False
    refused = parse(done.stdout)
    return refused, bool(refused)


def write_atomically(path: Path, text: str) -> None:
    """node_exporter may read at any moment: it must see the old file or the new one, never half of one."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        temporary.chmod(0o644)
        temporary.replace(path)
    except BaseException:
        temporary.unlink()
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claw.exporters.offnet", description=__doc__.splitlines()[0])
    parser.add_argument("--textfile", type=Path, required=True, help="the .prom file node_exporter reads")
    args = parser.parse_args(argv)
    refused, loaded = read_counters()
    write_atomically(args.textfile, render(refused, loaded=loaded))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
