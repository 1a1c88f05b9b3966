"""The `claw` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from claw import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claw", description="PicoCluster Claw appliance tools")
    parser.add_argument("--version", action="version", version=f"claw {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
