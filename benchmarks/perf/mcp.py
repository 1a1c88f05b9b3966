#!/usr/bin/env python3
"""MCP servers: tool latency in-process and over loopback HTTP, cold start over stdio, resident memory.

Drives the five claw MCP servers (apps/claw/mcp/registry.py) with the official SDK client, each on a cheap
read-only tool: leds get_state, system uptime_and_load, crush engine_health, time current_time, files
sandbox_path. What it starts for them lives in a temporary directory and is gone afterwards: an LED daemon with
the simulated backend on its own socket, a tiny fake llama.cpp engine answering /v1/models, a sandbox root and a
reminders database.

* in-process: ``Client(server)`` on the server object ``claw mcp`` would build (metrics middleware included);
  tools/list and tools/call latency, p50/p99 over --calls calls each.
* loopback HTTP: the same against one ``claw mcp serve`` process running all five over streamable HTTP, as
  the one client of its ``clients`` section (a key generated for the run, sent with ``keyed_transport``).
* stdio: the same through ``claw mcp NAME --stdio`` relaying to that process (what a desktop client gets),
  with the same key (``--key-file``).
* cold start: spawning ``claw mcp NAME --stdio`` until initialize + tools/list have completed, median of
  --cold-runs (the bare interpreter's start is printed beside it for scale), two ways: relayed to the running
  ``claw mcp serve`` (what a desktop client gets on an appliance, whose service is always up) and standalone
  (``--standalone``: the server and the MCP SDK start in the client's process).
* memory: VmRSS of the ``claw mcp serve`` process with all five after the HTTP runs, and of a process serving one
  server (--single) after a few calls, for comparison.

Targets (informational, PASS/MISS): tools/call p50 <= 2 ms in-process and <= 5 ms over loopback HTTP, cold start
<= 0.5 s per server, all five <= 150 MiB resident. The exit status is non-zero only when a measurement could not
run. Takes about a minute on 2 cores.

Run: .venv/bin/python benchmarks/perf/mcp.py [--calls 200] [--cold-runs 3] [--servers files time] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
# perfutil sits beside this file: imported while this folder is still on the path.
from perfutil import BenchError, bench_engine, free_port, rss, stop, summary_ms, wait_until  # noqa: E402

# This file is named like the SDK it measures: keep its folder off the path so `import mcp` finds the SDK.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import yaml  # noqa: E402
from claw.mcp.client import keyed_transport  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

REPO = HERE.parents[1]
CLAW = [sys.executable, "-c", "import sys; from claw.cli import main; sys.exit(main())"]
# server name -> the cheap read-only tool timed on it
TOOLS = {
    "leds": "get_state",
    "system": "uptime_and_load",
    "crush": "engine_health",
    "time": "current_time",
    "files": "sandbox_path",
}
TARGET_INPROC_MS = 2.0
TARGET_HTTP_MS = 5.0
TARGET_COLD_S = 0.5
TARGET_RSS_MIB = 150.0
WARMUP = 10

# --- helpers ------------------------------------------------------------------------------------------------


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return response.status == 200


def check_result(name: str, result: Any) -> None:
    """Every timed call must have succeeded, or the numbers measure an error path."""
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise BenchError(f"{name} {TOOLS[name]} answered an error: {text}")
    if name == "crush" and not (result.structured_content or {}).get("ready"):
        raise BenchError(f"crush engine_health: the fake engine is not ready: {result.structured_content}")


# --- the environment the servers run against ------------------------------------------------------------------


@dataclass
class Env:
    tmp: Path
    leds_socket: Path
    engine_url: str
    # The one client of the served configuration: its key (generated for the run) and the file holding it.
    key: str
    key_file: Path
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    def settings(self, name: str, tag: str) -> dict[str, Any]:
        """The non-default settings of one server; ``tag`` keeps the reminder databases of runs apart."""
        return {
            "leds": {"socket": str(self.leds_socket), "timeout": 5.0},
            "system": {},
            "crush": {"engine_url": self.engine_url, "engine": "llamacpp", "exporter_url": None},
            "time": {"zone": "UTC", "database": str(self.tmp / f"time-{tag}.sqlite3")},
            "files": {"root": str(self.tmp / "sandbox")},
        }[name]

    def clients(self, names: list[str]) -> dict[str, Any]:
        """The ``clients`` section of a served configuration: the benchmark, allowed every tool of ``names``."""
        return {"bench": {"key_file": str(self.key_file), "servers": dict.fromkeys(names, "*")}}

    def spawn(self, argv: list[str], log_name: str) -> tuple[subprocess.Popen[Any], Path]:
        log = self.tmp / log_name
        with log.open("w") as stream:
            process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stream)
        self.processes.append(process)
        return process, log


@contextlib.contextmanager
def environment() -> Iterator[Env]:
    tmp = Path(tempfile.mkdtemp(prefix="claw-bench-mcp-", dir="/tmp"))  # short: a socket path fits in 107 bytes
    (tmp / "sandbox" / "docs").mkdir(parents=True)
    (tmp / "sandbox" / "docs" / "note.txt").write_text("benchmark\n")
    try:
        # The benchmarks' fake engine (tests/doubles/bench_engine.py): what engine_health asks of llama.cpp's server.
        # It stops last, after what was started against it.
        with bench_engine() as engine_url:
            key = secrets.token_urlsafe(32)
            key_file = tmp / "client.key"
            key_file.write_text(key + "\n")
            key_file.chmod(0o600)
            env = Env(tmp, tmp / "leds.sock", engine_url, key, key_file)
            try:
                daemon, log = env.spawn(
                    [
                        sys.executable,
                        "-m",
                        "claw.leds.daemon",
                        "--socket",
                        str(env.leds_socket),
                        "--backend",
                        "simulated",
                        "--log-level",
                        "WARNING",
                    ],
                    "leds-daemon.log",
                )
                wait_until(env.leds_socket.exists, daemon, "the LED daemon", log)
                yield env
            finally:
                for process in reversed(env.processes):
                    stop(process)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- latency ------------------------------------------------------------------------------------------------


async def time_client(client: Client, name: str, calls: int) -> dict[str, dict[str, float]]:
    tool = TOOLS[name]
    for _ in range(WARMUP):
        await client.list_tools()
        check_result(name, await client.call_tool(tool, {}))
    listed: list[float] = []
    called: list[float] = []
    results = []
    for _ in range(calls):
        start = time.perf_counter()
        tools = await client.list_tools()
        listed.append(time.perf_counter() - start)
    if tool not in {t.name for t in tools.tools}:
        raise BenchError(f"{name}: tools/list does not name {tool}")
    for _ in range(calls):
        start = time.perf_counter()
        result = await client.call_tool(tool, {})
        called.append(time.perf_counter() - start)
        results.append(result)
    for result in results:
        check_result(name, result)
    return {"tools_list": summary_ms(listed), "tools_call": summary_ms(called)}


async def in_process(env: Env, names: list[str], calls: int) -> dict[str, Any]:
    # Built the way `claw mcp` builds them: the registry validates the settings, the metrics middleware wraps.
    from claw.mcp.registry import load_module, read_config, server_settings
    from claw.mcp.runtime import ToolMetrics

    config_path = env.tmp / "inproc.yml"
    config_path.write_text(yaml.safe_dump({"servers": {name: env.settings(name, "inproc") for name in names}}))
    config = read_config(config_path)
    metrics = ToolMetrics()
    results = {}
    # The SDK sends the servers' INFO log (one line per engine request of crush) to stderr through rich, as in
    # `claw mcp serve`; it is still written, to a file, so the servers pay what they pay in production.
    with (env.tmp / "inproc.log").open("w") as log, contextlib.redirect_stderr(log):
        for name in names:
            server = metrics.instrument(load_module(name).create(server_settings(name, config)))
            async with Client(server, cache=None) as client:
                results[name] = await time_client(client, name, calls)
    # From here on the only HTTP client in this process is the benchmark's own: its request log is not measured.
    for logger in ("httpx", "httpx2", "mcp.client"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    return results


@dataclass
class Served:
    process: subprocess.Popen[Any]
    ports: dict[str, int]
    metrics_port: int
    config: Path
    key: str
    key_file: Path

    def client(self, name: str) -> Client:
        """An SDK client of ``name`` over loopback HTTP, sending the configured client's key."""
        return Client(keyed_transport(f"http://127.0.0.1:{self.ports[name]}/mcp", self.key), cache=None)


@contextlib.contextmanager
def serve(env: Env, names: list[str], tag: str) -> Iterator[Served]:
    """``claw mcp serve`` with ``names`` on free loopback ports; ready once every port answers."""
    ports = {name: free_port() for name in names}
    metrics_port = free_port()
    servers = {name: {**env.settings(name, tag), "port": ports[name]} for name in names}
    config = env.tmp / f"{tag}.yml"
    settings = {"host": "127.0.0.1", "metrics_port": metrics_port, "servers": servers, "clients": env.clients(names)}
    config.write_text(yaml.safe_dump(settings))
    process, log = env.spawn([*CLAW, "mcp", "serve", "--config", str(config)], f"{tag}.log")

    def listening() -> bool:
        for port in [*ports.values(), metrics_port]:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    try:
        wait_until(listening, process, f"claw mcp serve ({', '.join(names)})", log)
        yield Served(process, ports, metrics_port, config, env.key, env.key_file)
    finally:
        stop(process, 10)


async def over_http(served: Served, names: list[str], calls: int) -> dict[str, Any]:
    results = {}
    for name in names:
        async with served.client(name) as client:
            results[name] = await time_client(client, name, calls)
    return results


async def over_stdio(served: Served, names: list[str], calls: int) -> dict[str, Any]:
    """The same over stdio, through ``claw mcp NAME --stdio`` relaying to ``served`` (a desktop client's path)."""
    results = {}
    for name in names:
        argv = relayed_argv(served, name)
        params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ}, cwd=str(REPO))
        async with Client(stdio_client(params), cache=None) as client:
            results[name] = await time_client(client, name, calls)
    return results


# --- cold start ---------------------------------------------------------------------------------------------


async def cold_start_once(argv: list[str], name: str, errlog: TextIO) -> float:
    params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ}, cwd=str(REPO))
    start = time.perf_counter()
    async with Client(stdio_client(params, errlog=errlog), cache=None) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - start
    if TOOLS[name] not in {tool.name for tool in tools.tools}:
        raise BenchError(f"{name} over stdio: tools/list does not name {TOOLS[name]}")
    return elapsed


def standalone_argv(env: Env, name: str) -> list[str]:
    overrides = [f"{key}={value}" for key, value in env.settings(name, "cold").items() if value is not None]
    return [*CLAW, "mcp", name, "--stdio", "--standalone", *(arg for pair in overrides for arg in ("--set", pair))]


def relayed_argv(served: Served, name: str) -> list[str]:
    return [*CLAW, "mcp", name, "--stdio", "--config", str(served.config), "--key-file", str(served.key_file)]


async def cold_starts(env: Env, names: list[str], runs: int, served: Served | None = None) -> dict[str, Any]:
    """Cold starts standalone, or relayed to ``served`` when given (imports: what the started process loads)."""
    from claw.mcp.servers import SERVERS

    results: dict[str, Any] = {}
    with (env.tmp / "stdio.log").open("a") as errlog:
        for name in names:
            argv = standalone_argv(env, name) if served is None else relayed_argv(served, name)
            try:
                samples = [await cold_start_once(argv, name, errlog) for _ in range(runs)]
            except BenchError:
                raise
            except Exception as err:  # the SDK wraps a dead server in several ways; say which server
                errlog.flush()
                tail = (env.tmp / "stdio.log").read_text()[-2000:]
                raise BenchError(f"{name} over stdio failed: {err!r}\n{tail}") from err
            loaded = "claw.mcp.relay" if served is not None else SERVERS[name].module
            imports = spawn_time(f"import os, claw.cli, claw.mcp.cli, {loaded}; os._exit(0)", runs)
            results[name] = {
                "median_s": statistics.median(samples),
                "min_s": min(samples),
                "imports_s": imports,
                "runs": samples,
            }
    return results


def spawn_time(code: str, runs: int) -> float:
    """Median wall time of ``python -c code``: the interpreter's start, or what importing a server costs
    (``os._exit`` at the end leaves out the interpreter's teardown, which the cold start does not wait for)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# --- memory -------------------------------------------------------------------------------------------------


async def warm_up(served: Served, names: list[str]) -> None:
    for name in names:
        async with served.client(name) as client:
            for _ in range(WARMUP):
                check_result(name, await client.call_tool(TOOLS[name], {}))


# --- report -------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(report: dict[str, Any]) -> None:
    print(f"claw MCP servers benchmark: {report['calls']} calls per measurement, {report['host']}")
    header = f"{'server':8} {'tool':16} {'path':10} {'list p50':>9} {'list p99':>9} {'call p50':>9} {'call p99':>9}"
    print(f"{header}  target call p50")
    for name in report["servers"]:
        paths = (
            ("in-proc", "in_process", TARGET_INPROC_MS),
            ("http", "http", TARGET_HTTP_MS),
            ("stdio", "stdio", None),
        )
        for path, key, target in paths:
            row = report[key].get(name)
            if row is None:
                continue
            listed, called = row["tools_list"], row["tools_call"]
            goal = "(no target)" if target is None else f"<= {target:g} ms {verdict(called['p50_ms'] <= target)}"
            print(
                f"{name:8} {TOOLS[name]:16} {path:10} {listed['p50_ms']:7.2f}ms {listed['p99_ms']:7.2f}ms "
                f"{called['p50_ms']:7.2f}ms {called['p99_ms']:7.2f}ms  {goal}"
            )
    if report["cold_start"] or report["cold_start_relayed"]:
        print(f"cold start over stdio (spawn to initialize + tools/list, median of {report['cold_runs']}):")
        print(f"  {'interpreter only':28} {report['interpreter_start_s'] * 1000:7.0f} ms  (python -c, no imports)")
    for key, how in (("cold_start_relayed", "relayed to the service"), ("cold_start", "standalone")):
        for name, row in report[key].items():
            print(
                f"  {name + ', ' + how:28} {row['median_s'] * 1000:7.0f} ms  min {row['min_s'] * 1000:5.0f} ms  "
                f"of which imports {row['imports_s'] * 1000:5.0f} ms  "
                f"<= {TARGET_COLD_S * 1000:.0f} ms {verdict(row['median_s'] <= TARGET_COLD_S)}"
            )
    memory = report["memory"]
    if memory:
        print("resident memory:")
        for label, row in memory.items():
            target = ""
            if label == "serve_all":
                target = f"  <= {TARGET_RSS_MIB:g} MiB {verdict(row['rss_mib'] <= TARGET_RSS_MIB)}"
            print(f"  {row['what']:40} {row['rss_mib']:7.1f} MiB  peak {row['peak_mib']:6.1f} MiB{target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per tool and path (default 200)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per server (default 3)")
    parser.add_argument("--servers", nargs="+", choices=list(TOOLS), default=list(TOOLS), help="default: all five")
    parser.add_argument("--single", choices=list(TOOLS), default="files", help="server for the one-server RSS")
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cold starts")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.cold_runs < 1:
        parser.error("--calls and --cold-runs must be at least 1")
    names = list(args.servers)
    report: dict[str, Any] = {
        "servers": names,
        "calls": args.calls,
        "cold_runs": args.cold_runs,
        "host": f"python {platform.python_version()}, {os.cpu_count()} cores",
        "in_process": {},
        "http": {},
        "stdio": {},
        "cold_start": {},
        "cold_start_relayed": {},
        "memory": {},
    }
    started = time.perf_counter()
    try:
        with environment() as env:
            report["in_process"] = asyncio.run(in_process(env, names, args.calls))
            with serve(env, names, "serve-all") as served:
                idle = rss(served.process.pid)
                report["http"] = asyncio.run(over_http(served, names, args.calls))
                report["memory"]["serve_idle"] = {"what": f"claw mcp serve, {len(names)} servers, idle", **idle}
                report["memory"]["serve_all"] = {
                    "what": f"claw mcp serve, {len(names)} servers, after calls",
                    **rss(served.process.pid),
                }
                report["stdio"] = asyncio.run(over_stdio(served, names, args.calls))
                if not args.skip_cold:
                    report["interpreter_start_s"] = spawn_time("import os; os._exit(0)", args.cold_runs)
                    report["cold_start_relayed"] = asyncio.run(cold_starts(env, names, args.cold_runs, served))
            with serve(env, [args.single], "serve-one") as served:
                asyncio.run(warm_up(served, [args.single]))
                report["memory"]["serve_one"] = {
                    "what": f"claw mcp serve, {args.single} only, after calls",
                    **rss(served.process.pid),
                }
            if not args.skip_cold:
                report["cold_start"] = asyncio.run(cold_starts(env, names, args.cold_runs))
    except BenchError as err:
        print(f"mcp benchmark: {err}", file=sys.stderr)
        return 1
    report["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
        print(f"benchmark wall time {report['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
