"""``claw mcp``: run one server over stdio for a desktop client, or the enabled servers over loopback HTTP.

claw mcp files --stdio                             one server, stdin/stdout (relayed to the service if it runs)
claw mcp files --stdio --set root=/srv/sandbox     one server of its own, stdin/stdout
claw mcp time --http                               one server on its loopback port (from the config file)
claw mcp serve                                     every server in /etc/claw/mcp.yml, one process
claw mcp check --config FILE                       validate a configuration as `serve` would read it

Over HTTP (serve, check, --http) the ports come from the configuration: `metrics_port` and each server's `port`
(`--set port=N` for one server) are required; over stdio no port is needed and no file either.

Over stdio, a server the configuration enables and the running service answers for is relayed to that service
(one instance for every client, and a start without the MCP SDK); --standalone or --set runs a server in this
process instead. The service answers only configured clients: the relay sends the key in --key-file, else in
$CLAW_MCP_KEY_FILE, else in ~/.config/claw/mcp.key (a key the administrator issued through the clients section of
/etc/claw/mcp.yml, mcp_servers_clients in Ansible). Over HTTP, `clients` is required.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from claw.mcp import relay
from claw.mcp.servers import DEFAULT_CONFIG, SERVERS, ConfigError, configured_endpoint


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mcp", help="run the MCP servers", description=__doc__)
    parser.add_argument("server", choices=[*SERVERS, "serve", "check"], help="a server name, 'serve' or 'check'")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="serve one server over stdin/stdout (default)")
    transport.add_argument("--http", action="store_true", help="serve one server over loopback streamable HTTP")
    parser.add_argument(
        "--standalone", action="store_true", help="with --stdio: serve in this process, never relay to the service"
    )
    parser.add_argument("--config", type=Path, help="process configuration (default /etc/claw/mcp.yml if present)")
    parser.add_argument(
        "--key-file", type=Path, help="with --stdio: the client key the relay sends to the service (see above)"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one setting"
    )
    parser.set_defaults(handler=run)


def _overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def run(args: argparse.Namespace) -> int:
    every = args.server in ("serve", "check")
    stdio = not (every or args.http)
    if stdio and not (args.standalone or args.overrides):
        endpoint = configured_endpoint(args.config, args.server)
        if endpoint is not None and relay.service_listening(*endpoint):
            try:
                key = relay_key(args.key_file)
            except ConfigError as err:
                print(f"claw mcp: the MCP service at {endpoint[0]}:{endpoint[1]} {err}", file=sys.stderr)
                return 2
            return relay.relay_stdio(*endpoint, key=key)
    return serve(args, every, stdio)


KEY_ENV = "CLAW_MCP_KEY_FILE"
USER_KEY = Path("~/.config/claw/mcp.key")
KEY_HELP = (
    "needs a client key: pass --key-file FILE, set CLAW_MCP_KEY_FILE or put it in ~/.config/claw/mcp.key (ask the "
    "administrator for one: mcp_servers_clients), or serve in this process with --standalone"
)


def relay_key(given: Path | None) -> str:
    """The client key for the relay: --key-file, else $CLAW_MCP_KEY_FILE, else ~/.config/claw/mcp.key."""
    env = os.environ.get(KEY_ENV)
    candidates = [given] if given is not None else [Path(env)] if env else [USER_KEY.expanduser()]
    for path in candidates:
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if given is None and not env:
                break  # the default place is simply unused
            raise ConfigError(f"{KEY_HELP}; {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{KEY_HELP}; cannot read {path}: {err}") from None
        if not key:
            raise ConfigError(f"{KEY_HELP}; {path} is empty")
        return key
    raise ConfigError(KEY_HELP)


def serve(args: argparse.Namespace, every: bool, stdio: bool) -> int:
    """Serve in this process: the settings validated, the MCP SDK and the servers' modules loaded."""
    import asyncio
    import logging

    from claw.mcp.registry import (
        callers,
        check_ports,
        load_module,
        read_config,
        require_clients,
        require_ports,
        server_settings,
    )

    try:
        config = read_config(args.config)
        names = list(config.servers) if every else [args.server]
        if every and not names:
            raise ConfigError("no servers are enabled in the configuration's 'servers' section")
        overrides = _overrides(args.overrides)
        if overrides and every:
            raise ConfigError(f"--set applies to one server; edit the configuration file for '{args.server}'")
        settings = {name: server_settings(name, config, overrides) for name in names}
        if not stdio:
            source = args.config or DEFAULT_CONFIG
            require_ports(config, settings, str(source), one=not every)
            check_ports(config, settings)
            require_clients(config, str(source))
            clients = callers(config)
        if args.server == "check":
            print(f"claw mcp: {args.config or 'the configuration'} is valid ({', '.join(names)})")
            return 0
        from claw.mcp.runtime import Caller, Callers, Endpoint, SessionLimits, ToolMetrics, guard, serve_http

        known = Callers([] if stdio else [Caller(*client) for client in clients])
        metrics = ToolMetrics()
        endpoints = []
        for name, server_config in settings.items():
            module = load_module(name)
            if name == "files" and not stdio:
                roots = {client: c.files_root for client, c in config.clients.items() if c.files_root}
                server = module.create(server_config, client_roots=roots)
            else:
                server = module.create(server_config)
            if not stdio:
                guard(server, known)
            endpoints.append(
                Endpoint(
                    metrics.instrument(server), server_config.port, json_response=not SERVERS[name].streams_progress
                )
            )
    except ConfigError as err:
        print(f"claw mcp: {err}", file=sys.stderr)
        return 2
    # The SDK logs at INFO; a line per engine request would cost more than the request (and fill the journal).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if stdio:
        endpoints[0].server.run("stdio")
        return 0
    assert config.metrics_port is not None  # require_ports refused a file without one
    try:
        limits = SessionLimits(config.max_sessions, config.session_idle_timeout_s)
        asyncio.run(serve_http(endpoints, metrics, config.host, config.metrics_port, known, limits))
    except ValueError as err:
        print(f"claw mcp: {err}", file=sys.stderr)
        return 2
    return 0
