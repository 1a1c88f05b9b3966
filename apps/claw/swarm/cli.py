"""``claw swarm``: run the heartbeat supervisor, validate its settings, search its incidents.

claw swarm run --config /etc/claw/swarm.yml            supervise the workers (systemd runs this)
claw swarm run --config /etc/claw/swarm.yml --check    validate the file (exit 0, or 2 with the reason)
claw swarm incidents --config FILE [--search TEXT] [--worker NAME] [--limit N] [--json]

Exit status: 0 done, 1 the incident database cannot be read, 2 bad settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from claw.swarm import config
from claw.swarm.store import Incident, IncidentStore, StoreError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("swarm", help="supervise the OpenClaw worker gateways", description=__doc__)
    commands = parser.add_subparsers(dest="swarm_command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="probe the workers, restart the hung ones, record incidents")
    run.add_argument("--config", type=Path, required=True, help="YAML file with SwarmSettings keys")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--check", action="store_true", help="validate the settings (exit 0, or 2 with the reason) and start nothing"
    )
    run.set_defaults(handler=_run)

    incidents = commands.add_parser("incidents", help="list or search the recorded incidents")
    where = incidents.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the supervisor's settings (for the database path)")
    where.add_argument("--db", type=Path, help="the incident database itself")
    incidents.add_argument("--search", help="every word must occur in the worker, symptom, action or log lines")
    incidents.add_argument("--worker", help="only this worker's incidents (without --search)")
    incidents.add_argument("--limit", type=int, default=20, help="newest first, at most this many (default 20)")
    incidents.add_argument("--json", action="store_true", help="one JSON object per line")
    incidents.set_defaults(handler=_incidents)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs every probe at INFO: 2 lines a worker every probe_interval would bury the incidents in the journal.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))
    try:
        settings = config.load(args.config)
    except ValueError as err:
        print(f"claw swarm run: {err}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"claw swarm run: {args.config}: the settings are valid "
            f"({len(settings.workers)} workers, restart deadline {settings.restart_deadline_s:g} s)"
        )
        return 0
    from claw.swarm.service import serve  # the service's imports (httpx, prometheus) only when it runs

    try:
        asyncio.run(serve(settings, _stop_on_signals))
    except StoreError as err:
        print(f"claw swarm run: {err}", file=sys.stderr)
        return 1
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _incidents(args: argparse.Namespace) -> int:
    if args.db is not None:
        path = args.db
    else:
        try:
            path = config.load(args.config).store.path
        except ValueError as err:
            print(f"claw swarm incidents: {err}", file=sys.stderr)
            return 2
    if not path.exists():
        print(f"claw swarm incidents: no incident database at {path}", file=sys.stderr)
        return 1
    try:
        store = IncidentStore(path)
        try:
            found = (
                store.search(args.search, limit=args.limit)
                if args.search
                else store.recent(worker=args.worker, limit=args.limit)
            )
        finally:
            store.close()
    except ValueError as err:
        print(f"claw swarm incidents: {err}", file=sys.stderr)
        return 2
    except StoreError as err:
        print(f"claw swarm incidents: {err}", file=sys.stderr)
        return 1
    for incident in found:
        print(json.dumps(incident.as_dict()) if args.json else describe(incident))
    if not found and not args.json:
        print("no incidents")
    return 0


def describe(incident: Incident) -> str:
    """One incident for people: a header line, the action, then the log lines indented."""
    lines = [
        f"#{incident.id} {incident.when:%Y-%m-%d %H:%M:%S}Z {incident.worker}: {incident.symptom}",
        f"    action: {incident.action}",
        *(f"    | {line}" for line in incident.logs),
    ]
    return "\n".join(lines)
