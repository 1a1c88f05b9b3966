"""``python -m claw.threadweaver --config FILE`` runs the console; ``... hash-password`` prints a password hash."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from claw.threadweaver import auth, config, keys, providers
from claw.threadweaver.console import Console
from claw.threadweaver.governance import Governance, PriceTable
from claw.threadweaver.hooks import Hooks
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.router import Router
from claw.threadweaver.store import ThreadStore


def build_console(
    settings: config.Settings, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> Console:
    """The console for ``settings``; ``transports`` (provider name -> transport) is for tests."""
    store = ThreadStore(settings.store.path, keys.resolve(settings.store.key_file, settings.store.key_env))
    adapters = {
        name: providers.build(
            name,
            provider.kind,
            provider.base_url,
            api_key=provider.api_key(),
            timeout=provider.timeout_s,
            engine=provider.engine,
            extra_body=provider.extra_body,
            transport=(transports or {}).get(name),
        )
        for name, provider in settings.providers.items()
    }
    governance = Governance(store, PriceTable(settings.prices), settings.caps)
    metrics = Metrics()
    hooks = Hooks.from_directory(settings.hooks_dir, metrics.hook_outcome)
    return Console(
        store, Router(adapters, governance), governance, hooks, metrics, settings.limits,
        tools=settings.mcp.catalogue(), max_tool_rounds=settings.mcp.max_tool_rounds,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claw.threadweaver", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve", "hash-password"], default="serve")
    parser.add_argument("--config", type=Path, help="the YAML configuration file")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        password = getpass.getpass("console password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            parser.error("the password needs at least 8 characters")
        print(auth.hash_password(password))
        return 0
    if args.config is None:
        parser.error("--config FILE is required")
    import uvicorn

    from claw.threadweaver.app import create_app

    settings = config.load(args.config)
    console = build_console(settings)
    sessions = auth.Sessions(auth.read_hash(settings.password_file))
    uvicorn.run(create_app(console, sessions), host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
