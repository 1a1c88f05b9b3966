"""``claw status``: one report of the whole cluster, and a gate fleets can script on.

claw status                                  the report as text
claw status --json                           the report as JSON (the web UI's shape, see status.md)
claw status --prometheus http://claw:9090 --engine http://crush:11434

Exit status: 0 every node is up and no critical alert fires; 1 otherwise (a node down, a critical alert firing,
no node known, or Prometheus unavailable); 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from claw.leds.protocol import DEFAULT_SOCKET
from claw.status.prometheus import DEFAULT_TIMEOUT_S
from claw.status.render import render_text
from claw.status.report import (
    DEFAULT_BOM_FILE,
    DEFAULT_LAST_UPDATE_FILE,
    Sources,
    collect_report_sync,
    exit_code,
    status_json,
)

# A convenience for a person typing `claw status` on the claw node, who has no config file to name Prometheus:
# Prometheus' own upstream port, which appliance_services keeps by default. It is not the appliance's wiring: a
# caller that knows appliance_services (a playbook) passes --prometheus with its port, so a changed one reaches it.
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--prometheus", type=_http_url, default=DEFAULT_PROMETHEUS_URL, help="Prometheus base URL (default %(default)s)"
    )
    parser.add_argument(
        "--engine", type=_http_url, help="inference engine base URL, e.g. http://crush:11434 (served models too)"
    )
    parser.add_argument(
        "--leds-socket", type=Path, default=DEFAULT_SOCKET, help="LED daemon socket (default %(default)s)"
    )
    parser.add_argument("--no-leds", action="store_true", help="do not ask the LED daemon")
    parser.add_argument(
        "--last-update-file",
        type=Path,
        default=DEFAULT_LAST_UPDATE_FILE,
        help="JSON record the playbooks write (default %(default)s)",
    )
    parser.add_argument(
        "--bom-file",
        type=Path,
        default=DEFAULT_BOM_FILE,
        help="this node's bill of materials, its versions shown when present (default %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per Prometheus request (default %(default)s)"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="report the whole cluster (exit 1 when a node is down or a critical alert fires)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sources = Sources(
        prometheus_url=args.prometheus,
        engine_url=args.engine,
        leds_socket=None if args.no_leds else args.leds_socket,
        last_update_file=args.last_update_file,
        bom_file=args.bom_file,
        timeout=args.timeout,
    )
    report = collect_report_sync(sources)
    if args.json:
        print(json.dumps(status_json(report), indent=2, ensure_ascii=False))
    else:
        print(render_text(report))
    sys.stdout.flush()
    return exit_code(report)
