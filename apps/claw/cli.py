"""The `claw` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from claw import __version__
from claw.leds import cli as leds_cli
from claw.mcp import cli as mcp_cli
from claw.status import cli as status_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw", description="PicoCluster Claw appliance tools")
    parser.add_argument("--version", action="version", version=f"claw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    mcp_cli.add_parser(subparsers)
    leds_cli.add_parser(subparsers)
    status_cli.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
