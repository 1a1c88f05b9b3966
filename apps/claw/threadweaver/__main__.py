"""``python -m claw.threadweaver [serve] --config FILE`` runs the console; ``check --config FILE`` validates a
configuration without starting anything (provisioning runs it before a new file replaces the running one);
``hash-password`` prints a password hash, or with ``--from-file PLAIN --output HASH`` keeps a hash file in step
with a password file (prints ``updated`` or ``unchanged``)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from claw.status import Sources
from claw.threadweaver import auth, config, keys, providers
from claw.threadweaver.console import Console
from claw.threadweaver.gateway import Client, Gateway
from claw.threadweaver.governance import Governance, PriceTable
from claw.threadweaver.hooks import Hooks
from claw.threadweaver.ledger import Ledger
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.router import Router
from claw.threadweaver.status_panel import StatusPanel
from claw.threadweaver.store import ThreadStore


def build_console(
    settings: config.Settings, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> Console:
    """The console for ``settings``; ``transports`` (provider name -> transport) is for tests. Requests a crash
    left in flight are billed first (:meth:`.governance.Governance.recover`)."""
    store = ThreadStore(settings.store.path, keys.resolve(settings.store.key_file, settings.store.key_env))
    adapters = build_adapters(settings, transports)
    token_caps = {name: caps.caps() for name, caps in settings.token_caps.items()}
    governance = Governance(Ledger(store.db), PriceTable(settings.prices), settings.caps, token_caps)
    for entry, where, usage, cost in governance.recover():
        who = f"thread {entry.thread_id}" if entry.thread_id else f"gateway client {entry.client or '(none)'}"
        print(
            f"threadweaver: a request of {who} to {entry.provider}/{entry.model} was in flight when the process "
            f"stopped; billed {usage.input_tokens}+{usage.output_tokens} tokens, ${cost:.6f} ({where})",
            file=sys.stderr,
        )
    metrics = Metrics()
    hooks = Hooks.from_directory(settings.hooks_dir, metrics.hook_outcome, settings.hook_timeout_s)
    models = {name: provider.models for name, provider in settings.providers.items()}
    return Console(
        store, Router(adapters, governance, models), governance, hooks, metrics, settings.limits,
        tools=settings.mcp.catalogue(), max_tool_rounds=settings.mcp.max_tool_rounds,
    )  # fmt: skip


def build_gateway(settings: config.Settings, console: Console) -> Gateway:
    """The OpenAI-compatible gateway's clients, keys read from their key files, with the limits file's overrides
    (``gateway.limits_file``) laid over them."""
    keys = settings.gateway.keys()
    clients = [
        Client(
            name,
            keys[name],
            client.cap_usd,
            None if client.providers is None else frozenset(client.providers),
            max_output_tokens=client.max_output_tokens,
            max_history_turns=client.max_history_turns,
            cap_tokens=client.cap_tokens,
        )
        for name, client in settings.gateway.clients.items()
    ]
    return Gateway(
        console.router, console.governance, console.metrics, clients, limits_file=settings.gateway.limits_file
    )


def build_adapters(
    settings: config.Settings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> dict[str, providers.Provider]:
    return {
        name: providers.build(
            name,
            provider.kind,
            provider.base_url,
            api_key=provider.api_key(),
            timeout=provider.timeout_s,
            engine=provider.engine,
            extra_body=provider.extra_body,
            max_output_tokens=provider.max_output_tokens,
            transport=(transports or {}).get(name),
        )
        for name, provider in settings.providers.items()
    }


def check(settings: config.Settings) -> list[str]:
    """What would stop ``settings`` from serving, without opening the store or the network."""
    problems: list[str] = []
    try:
        build_adapters(settings)
    except (ValueError, OSError) as err:
        problems.append(f"providers: {err}")
    try:
        auth.read_hash(settings.password_file)
    except auth.PasswordFileError as err:
        problems.append(str(err))
    try:
        settings.gateway.keys()
    except (ValueError, OSError) as err:
        problems.append(f"gateway: {err}")
    problems += unpriced_client_caps(settings)
    if settings.tls is not None:
        for path in (settings.tls.cert_file, settings.tls.key_file):
            if not path.is_file():
                problems.append(f"tls: {path} does not exist")
    if settings.hooks_dir is not None:
        try:
            Hooks.from_directory(settings.hooks_dir, lambda *_: None)
        except Exception as err:  # a hook that fails to import, whatever it raises
            problems.append(f"hooks: {err}")
    return problems


def unpriced_client_caps(settings: config.Settings) -> list[str]:
    """Gateway clients capped in USD that may use a cloud provider with no prices: their spend there would be $0."""
    problems = []
    for name, client in settings.gateway.clients.items():
        if client.cap_usd is None:
            continue
        allowed = settings.providers if client.providers is None else client.providers
        unpriced = [p for p in allowed if settings.providers[p].kind != "crush" and p not in settings.prices]
        if unpriced:
            problems.append(
                f"gateway: client {name} has cap_usd but may use {', '.join(sorted(unpriced))}, which has no prices "
                "(its spend would count $0): add prices or leave it out of the client's providers"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claw.threadweaver", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve", "check", "validate", "hash-password"], default="serve")
    parser.add_argument("--config", type=Path, help="the YAML configuration file")
    parser.add_argument("--from-file", type=Path, help="hash-password: the plain password file")
    parser.add_argument("--output", type=Path, help="hash-password: the hash file to keep in step")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        return hash_password(parser, args)
    if args.config is None:
        parser.error("--config FILE is required")
    try:
        settings = config.load(args.config)
    except (OSError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        print(f"{args.config}: {err}", file=sys.stderr)
        return 2
    if args.command == "validate":
        # The file alone (what the Ansible role runs on the controller before it changes a node): the checks that
        # need the node's key, hash and certificate files are `check`'s.
        print(f"{args.config}: valid")
        return 0
    if args.command == "check":
        problems = check(settings)
        for problem in problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return serve(settings)


def hash_password(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.from_file is not None or args.output is not None:
        if args.from_file is None or args.output is None:
            parser.error("--from-file and --output go together")
        print("updated" if auth.sync_hash(args.from_file, args.output) else "unchanged")
        return 0
    password = getpass.getpass("console password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    problem = auth.password_problem(password)
    if problem:
        parser.error(f"the password {problem}")
    print(auth.hash_password(password))
    return 0


def status_panel(status: config.StatusConfig | None) -> StatusPanel | None:
    if status is None:
        return None
    sources = Sources(
        prometheus_url=status.prometheus_url,
        engine_url=status.engine_url,
        leds_socket=status.leds_socket,
        last_update_file=status.last_update_file,
    )
    return StatusPanel(sources, status.cache_s)


def serve(settings: config.Settings) -> int:
    import uvicorn

    from claw.threadweaver.app import create_app
    from claw.threadweaver.guards import log_config

    console = build_console(settings)
    sessions = auth.Sessions(auth.read_hash(settings.password_file))
    tls = settings.tls
    uvicorn.run(
        create_app(
            console,
            sessions,
            status_panel(settings.status),
            build_gateway(settings, console),
            max_body_bytes=settings.max_body_bytes,
        ),
        host=str(settings.host),
        port=settings.port,
        # C event loop and HTTP parser (dependencies of claw): a fraction of asyncio's and h11's CPU per request
        # and per streamed chunk (benchmarks/perf/threadweaver.py).
        loop="uvloop",
        http="httptools",
        log_level="info",
        log_config=log_config(),  # the access log without query strings (a search term is not logged)
        ssl_certfile=str(tls.cert_file) if tls else None,
        ssl_keyfile=str(tls.key_file) if tls else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
