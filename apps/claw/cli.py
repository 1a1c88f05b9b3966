"""The `claw` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

import claw

# Subcommand -> the module whose add_parser() registers it. Only the chosen one is imported: a hook calling
# `claw leds signal` or a desktop client starting `claw mcp files --stdio` should not pay for the others.
COMMANDS = {"mcp": "claw.mcp.cli", "leds": "claw.leds.cli", "status": "claw.status.cli", "swarm": "claw.swarm.cli"}


class _VersionAction(argparse.Action):
    """``--version``, resolved only when asked for (reading the package metadata is slow)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"claw {claw.__version__}")  # stdout, as argparse's own version action (scripts read it there)
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command`` registered, or every subcommand when it is None (help, usage errors)."""
    parser = argparse.ArgumentParser(prog="claw", description="PicoCluster Claw appliance tools")
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if command in (None, name):
            importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    chosen = arguments[0] if arguments and arguments[0] in COMMANDS else None
    parser = build_parser(chosen)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
