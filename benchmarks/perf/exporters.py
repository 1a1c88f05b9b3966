#!/usr/bin/env python3
"""Exporter scrape latency: p50/p99/max of plain GETs of /metrics, and each exporter's resident memory.

Every scrape is a new connection (``Connection: close``) with the headers Prometheus sends (OpenMetrics
``Accept``, ``Accept-Encoding: gzip``), timed from connect to the last byte. Each scenario in SCENARIOS starts
its exporter on a free loopback port (``python -m MODULE --listen 127.0.0.1:PORT ...``), scrapes it a few times
to warm up, then --scrapes times, and reads its VmRSS/VmHWM from /proc. The crush exporter reads the simulated
Jetson tree (tests/fixtures/jetson_sysfs) with no engine, and with a tiny fake llama.cpp and Ollama engine
started here (what the exporter asks them: /health, /v1/models, /api/version, /api/ps). A later exporter (a
``claw.exporters.claw``, say) is one more Scenario; scenarios whose module is not installed are skipped.

With --url the script only scrapes exporters that already run, using the standard library alone, so it can be
copied to a node as it is, e.g. on the demo claw node:
``podman cp benchmarks/perf/exporters.py claw:/tmp/b.py && podman exec claw python3 /tmp/b.py
--url http://10.89.77.11:9811/metrics``.

Target (informational, PASS/MISS): p99 <= 20 ms per scrape. The exit status is non-zero only when a measurement
could not run.

Run: .venv/bin/python benchmarks/perf/exporters.py [--scrapes 200] [--url URL ...] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
JETSON_ROOT = REPO / "tests" / "fixtures" / "jetson_sysfs"
TARGET_MS = 20.0
WARMUP = 5
# What Prometheus 2.x/3.x sends; prometheus_client then answers OpenMetrics, gzipped.
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
SCRAPE_DURATION = re.compile(rb"^\w+_scrape_duration_seconds(?:\{\})? ([0-9.eE+-]+)$", re.M)


class BenchError(RuntimeError):
    """A measurement could not run; the message says which and why."""


@dataclass(frozen=True)
class Context:
    """What scenarios may point their exporter at."""

    jetson_root: Path
    engine_url: str


@dataclass(frozen=True)
class Scenario:
    """One exporter process to start and scrape."""

    exporter: str  # name in the table
    label: str  # what this run varies
    module: str  # run as `python -m MODULE --listen 127.0.0.1:PORT *args`
    args: Callable[[Context], list[str]]
    expect: tuple[str, ...]  # text every scrape must contain, so an error page is never timed as a success


def crush_args(engine: str) -> Callable[[Context], list[str]]:
    def args(ctx: Context) -> list[str]:
        flags = ["--sysfs-root", str(ctx.jetson_root), "--engine", engine, "--log-level", "WARNING"]
        return [*flags, "--engine-url", ctx.engine_url] if engine != "none" else flags

    return args


JETSON_UP = tuple(f'crush_source_available{{source="{source}"}} 1.0' for source in ("gpu", "power", "thermal"))
SCENARIOS = [
    Scenario("crush", "engine none", "claw.exporters.crush", crush_args("none"), JETSON_UP),
    Scenario(
        "crush",
        "llamacpp (fake)",
        "claw.exporters.crush",
        crush_args("llamacpp"),
        (*JETSON_UP, 'crush_engine_up{engine="llamacpp"} 1.0'),
    ),
    Scenario(
        "crush",
        "ollama (fake)",
        "claw.exporters.crush",
        crush_args("ollama"),
        (*JETSON_UP, 'crush_engine_up{engine="ollama"} 1.0'),
    ),
    # The claw node's exporter, once there is one, e.g.:
    # Scenario("claw", "default", "claw.exporters.claw", lambda ctx: ["--log-level", "WARNING"], ("claw_",)),
]


# --- measuring ----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def scrape(url: str, timeout: float) -> tuple[float, bytes, int]:
    """One Prometheus-style GET on a fresh connection: (seconds, decoded body, bytes on the wire)."""
    parts = urllib.parse.urlsplit(url)
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    headers = {
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
        "Connection": "close",
        "User-Agent": "claw-bench-exporters",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
    }
    start = time.perf_counter()
    connection = connection_type(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/metrics", headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise BenchError(f"GET {url}: HTTP {response.status}")
    body = gzip.decompress(raw) if response.getheader("Content-Encoding") == "gzip" else raw
    return elapsed, body, len(raw)


def measure(url: str, scrapes: int, timeout: float, expect: tuple[str, ...]) -> dict[str, Any]:
    for _ in range(WARMUP):
        scrape(url, timeout)
    times: list[float] = []
    collect: list[float] = []
    body, wire = b"", 0
    for _ in range(scrapes):
        elapsed, body, wire = scrape(url, timeout)
        times.append(elapsed)
        missing = [text for text in expect if text.encode() not in body]
        if missing:
            raise BenchError(f"{url}: the scrape lacks {missing[0]!r}")
        reported = SCRAPE_DURATION.search(body)
        if reported:
            collect.append(float(reported.group(1)))
    ms = [t * 1000 for t in times]
    return {
        "url": url,
        "scrapes": scrapes,
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "collect_p50_ms": statistics.median(collect) * 1000 if collect else None,
        "body_kib": len(body) / 1024,
        "wire_kib": wire / 1024,
        "samples": sum(1 for line in body.splitlines() if line and not line.startswith(b"#")),
    }


# --- processes: only where the scenarios start them, in a checkout ------------------------------------------------
# perfutil (beside this file) is imported there and only there: with --url this file runs alone on a node.


@contextlib.contextmanager
def exporter(scenario: Scenario, ctx: Context, timeout: float) -> Iterator[tuple[str, int]]:
    """Start the scenario's exporter; yields its /metrics URL and pid once it answers."""
    from perfutil import free_port, stop

    port = free_port()
    argv = [sys.executable, "-m", scenario.module, "--listen", f"127.0.0.1:{port}", *scenario.args(ctx)]
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                assert process.stderr is not None
                raise BenchError(f"{' '.join(argv[1:])} exited with {process.returncode}: {process.stderr.read()}")
            try:
                scrape(url, timeout)
                break
            except (OSError, http.client.HTTPException, BenchError):
                if time.monotonic() > deadline:
                    raise BenchError(f"{scenario.module} did not answer on {url} within 30 s") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        stop(process)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def run_scenarios(scrapes: int, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    import perfutil

    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        with perfutil.bench_engine() as engine_url:
            ctx = Context(JETSON_ROOT, engine_url)
            for scenario in SCENARIOS:
                row: dict[str, Any] = {"exporter": scenario.exporter, "scenario": scenario.label}
                if not installed(scenario.module):
                    rows.append({**row, "skipped": f"{scenario.module} is not installed"})
                    continue
                try:
                    with exporter(scenario, ctx, timeout) as (url, pid):
                        row.update(measure(url, scrapes, timeout, scenario.expect))
                        row.update(perfutil.rss(pid))
                except (BenchError, perfutil.BenchError, OSError, http.client.HTTPException) as err:
                    errors.append(f"{scenario.exporter} ({scenario.label}): {err}")
                    continue
                rows.append(row)
    except perfutil.BenchError as err:  # the fake engine did not start
        raise BenchError(str(err)) from None
    return rows, errors


def run_urls(urls: list[str], scrapes: int, timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for url in urls:
        row: dict[str, Any] = {"exporter": urllib.parse.urlsplit(url).netloc, "scenario": "running"}
        try:
            row.update(measure(url, scrapes, timeout, ()))
        except (BenchError, OSError, http.client.HTTPException) as err:
            errors.append(f"{url}: {err}")
            continue
        rows.append(row)
    return rows, errors


# --- report -------------------------------------------------------------------------------------------------


def print_report(rows: list[dict[str, Any]], scrapes: int) -> None:
    print(
        f"exporter scrape latency: {scrapes} scrapes each, new connection per scrape, python "
        f"{platform.python_version()}, {os.cpu_count()} cores"
    )
    print(
        f"{'exporter':22} {'scenario':16} {'p50':>8} {'p99':>8} {'max':>8} {'collect':>8} {'body':>9} "
        f"{'samples':>7} {'RSS':>9}  target p99 <= {TARGET_MS:g} ms"
    )
    for row in rows:
        if "skipped" in row:
            print(f"{row['exporter']:22} {row['scenario']:16} skipped: {row['skipped']}")
            continue
        collect = f"{row['collect_p50_ms']:6.2f}ms" if row["collect_p50_ms"] is not None else f"{'-':>8}"
        rss = f"{row['rss_mib']:5.1f} MiB" if "rss_mib" in row else f"{'-':>9}"
        verdict = "PASS" if row["p99_ms"] <= TARGET_MS else "MISS"
        print(
            f"{row['exporter']:22} {row['scenario']:16} {row['p50_ms']:6.2f}ms {row['p99_ms']:6.2f}ms "
            f"{row['max_ms']:6.2f}ms {collect} {row['body_kib']:5.1f} KiB {row['samples']:7d} {rss}  {verdict}"
        )
    print("collect = the exporter's own *_scrape_duration_seconds (p50); body = uncompressed /metrics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scrapes", type=int, default=200, help="timed scrapes per exporter (default 200)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per scrape (default 10)")
    parser.add_argument(
        "--url", action="append", default=[], help="scrape this running exporter instead of starting any (repeat)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    if args.scrapes < 1:
        parser.error("--scrapes must be at least 1")
    if args.url:
        rows, errors = run_urls(args.url, args.scrapes, args.timeout)
    else:
        try:
            rows, errors = run_scenarios(args.scrapes, args.timeout)
        except BenchError as err:
            rows, errors = [], [str(err)]
    if args.json:
        print(json.dumps({"scrapes": args.scrapes, "target_p99_ms": TARGET_MS, "results": rows, "errors": errors}))
    else:
        print_report(rows, args.scrapes)
    for error in errors:
        print(f"exporters benchmark: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
