#!/usr/bin/env python3
"""ThreadWeaver's cost: added latency over calling the engine directly, streaming, search, resident memory.

One run starts a small OpenAI-compatible engine (the llama.cpp server's wire: ``POST /v1/chat/completions``, JSON
or SSE, fixed replies, so its latency is stable) and ThreadWeaver as it runs on claw: ``python -m claw.threadweaver
--config ...`` (uvicorn, a temporary encrypted store, key file and scrypt password) with the engine as its crush
provider (``engine: llamacpp``). One httpx client over loopback then asks both, the engine directly and
ThreadWeaver (``POST /threads/{id}/messages`` and ``.../messages/stream``), alternating request by request, after a
warm-up; the difference is ThreadWeaver's. Conversations run 10 turns each, so ThreadWeaver also reads and sends
some history, as it does in use.

* added latency: p50/p99 of a small non-streamed reply, ThreadWeaver minus direct;
* time to first token (first content chunk) of a streamed reply, ThreadWeaver minus direct;
* streaming throughput: content chunks/s through ThreadWeaver / direct, with the engine pacing --stream-chunks
  chunks at --stream-rate per second (a fast engine), and unpaced (as fast as it goes; information only);
* search: --messages messages (realistic, varied text) put in the store in bulk (``ThreadStore.add_chain``, one
  transaction per conversation), then p50/p99 of ``GET /search`` and of ``ThreadStore.search`` in this process;
* memory: VmRSS of the ThreadWeaver process idle (started, one login), after the requests, after the search.

With --engine URL (e.g. a llama.cpp server, ``http://127.0.0.1:8080/v1``) the latency and streaming measurements
are repeated against that engine too (fewer requests; a real model's own variance is much larger than 1 ms).

Targets (informational, PASS/MISS): added latency p50 <= 1 ms and p99 <= 5 ms, time to first token overhead
<= 2 ms, paced streaming >= 0.98x direct, search p50 <= 20 ms at 100,000 messages, idle RSS <= 100 MiB. The exit
status is non-zero only when a measurement could not run. The default run takes 1 to 2 minutes on 2 cores;
timings on a loaded machine are noisy (the load average is printed with them).

Run: .venv/bin/python benchmarks/perf/threadweaver.py [--requests 300] [--messages 100000] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from claw.threadweaver import auth
from claw.threadweaver.store import ThreadStore
from perfutil import BenchError, bench_engine, cpu_seconds, free_port, rss, stop, summary_ms, wait_until

REPO = Path(__file__).resolve().parents[2]
# A fresh password per run: the benchmark's throw-away console is a real server on loopback.
PASSWORD = secrets.token_urlsafe(18)
KEY_ENV = "THREADWEAVER_BENCH_STORE_KEY"  # named in the config and removed from ThreadWeaver's environment
WARMUP = 20
TURNS_PER_THREAD = 10
MESSAGES_PER_THREAD = 50
SHORT_REPLY_CHUNKS = 16

# (metric, comparison, limit): the targets printed with PASS/MISS
TARGETS: list[tuple[str, str, float]] = [
    ("added_p50_ms", "<=", 1.0),
    ("added_p99_ms", "<=", 5.0),
    ("ttft_overhead_p50_ms", "<=", 2.0),
    ("stream_ratio", ">=", 0.98),
    ("search_p50_ms", "<=", 20.0),
    ("idle_rss_mib", "<=", 100.0),
]


@dataclass(frozen=True)
class Sizes:
    requests: int = 300  # timed non-streamed and streamed (TTFT) requests per path
    stream_chunks: int = 2000  # chunks of the throughput streams
    stream_runs: int = 3  # throughput streams per path, paced and unpaced each
    stream_rate: float = 1000.0  # chunks/s of the paced stream
    messages: int = 100_000  # messages in the store for the search
    queries: int = 200  # timed searches per path
    engine_requests: int = 20  # timed requests per path against --engine


QUICK = Sizes(requests=20, stream_chunks=200, stream_runs=1, messages=2_000, queries=20, engine_requests=5)


@dataclass(frozen=True)
class Backend:
    """An engine as both paths see it: its base URL (ending in /v1) and ThreadWeaver provider name."""

    label: str
    provider: str
    base_url: str
    model: str  # for the short replies
    paced_model: str | None  # for the paced stream; None: no paced stream (a real engine paces itself)
    requests: int
    stream_chunks: int
    warmup: int = WARMUP  # untimed request pairs first
    turns: int = TURNS_PER_THREAD  # turns per conversation (1: every request is a first turn, as sent directly)
    reply_tokens: int = 64  # max_tokens of the non-streamed replies
    fixed_reply: bool = True  # the engine always answers the same text (checked)
    extra_body: dict[str, Any] = field(default_factory=dict)  # in both paths' engine requests

    def body(self, model: str, max_tokens: int, *, stream: bool = False) -> dict[str, Any]:
        """The request the engine gets directly: what ThreadWeaver sends on a conversation's first turn."""
        messages = [{"role": "user", "content": prompt()}]
        body = {**self.extra_body, "model": model, "messages": messages, "max_tokens": max_tokens}
        return {**body, "stream": True} if stream else body


# --- text for the search ------------------------------------------------------------------------------------

TOPICS = {
    "appliance": "jetson orin raspberry fan thermal throttling power watts led firmware heatsink enclosure",
    "infra": "kubernetes ingress helm podman container systemd journald nginx certificate dns firewall proxy",
    "code": "python asyncio fastapi pydantic pytest regex dataclass decorator generator traceback typing refactor",
    "data": "sqlite postgres index query migration backup replication vacuum schema transaction parquet cursor",
    "models": "gemma llama quantization gguf tokenizer embedding context temperature sampling lora benchmark prompt",
    "home": "recipe garden tomatoes sourdough bicycle holiday mortgage insurance dentist laundry plumbing heating",
    "work": "invoice meeting deadline roadmap hiring contract quarterly customer proposal onboarding review budget",
    "writing": "essay poem summary outline paragraph headline translation grammar tone citation chapter abstract",
}
VERBS = [
    "configure",
    "restart",
    "update",
    "debug",
    "measure",
    "rotate",
    "restore",
    "tune",
    "migrate",
    "install",
    "profile",
    "document",
]
ADJECTIVES = ["slow", "flaky", "stuck", "noisy", "stale", "hot", "missing", "broken", "fast", "idle", "huge", "fine"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
USER_LINES = [
    "How do I {verb} the {t1} when the {t2} keeps failing?",
    "Can you explain why my {t1} is {adj} after I changed the {t2}?",
    "Write a short {t1} about {t2} and {t3}.",
    "What is the difference between {t1} and {t2} in {topic}?",
    "I tried to {verb} {t1} for ticket {num} but got error {code}.",
    "Summarize the notes from {day} about the {t1} and the {t2}.",
    "Is it safe to {verb} the {t1} while the {t2} is {adj}?",
]
ASSISTANT_LINES = [
    "You can {verb} the {t1} by checking the {t2} first; if it is still {adj}, restart the {t3}.",
    "The {t1} depends on the {t2}. In most setups the {adj} option is fine, but watch the {t3}.",
    "Here is a draft: the {t1} of {day} was {adj}, and the {t2} needs a {t3} before ticket {num} closes.",
    "Error {code} usually means the {t1} could not reach the {t2}. Try to {verb} it again.",
    "Step one: {verb} the {t1}. Step two: compare the {t2} with the {t3}. Step three: update ticket {num}.",
    "Short answer: no. The {t1} and the {t2} are {adj} together; {verb} the {t3} instead.",
]


@dataclass
class Corpus:
    """Seeded chat text: conversations stay mostly on one topic; ticket numbers and error codes are a long tail."""

    rng: random.Random = field(default_factory=lambda: random.Random(20250611))
    numbers: list[str] = field(default_factory=list)

    def sentence(self, lines: list[str], topic: str) -> str:
        def term() -> str:
            pool = topic if self.rng.random() < 0.7 else self.rng.choice(list(TOPICS))
            return self.rng.choice(TOPICS[pool].split())

        num = str(self.rng.randint(1000, 99999))
        if len(self.numbers) < 1000 and self.rng.random() < 0.05:
            self.numbers.append(num)
        return self.rng.choice(lines).format(
            verb=self.rng.choice(VERBS), adj=self.rng.choice(ADJECTIVES), day=self.rng.choice(DAYS),
            t1=term(), t2=term(), t3=term(), topic=topic, num=num, code=f"E{self.rng.randint(100, 999)}",
        )  # fmt: skip

    def conversation(self, length: int) -> list[tuple[Any, str]]:
        topic = self.rng.choice(list(TOPICS))
        turns: list[tuple[Any, str]] = []
        for n in range(length):
            role, lines = ("user", USER_LINES) if n % 2 == 0 else ("assistant", ASSISTANT_LINES)
            count = 1 if role == "user" else self.rng.randint(1, 4)
            turns.append((role, " ".join(self.sentence(lines, topic) for _ in range(count))))
        return turns

    def queries(self, count: int) -> list[tuple[str, str]]:
        """(kind, query): topic terms, two terms, a ticket number (few hits), common words (many hits)."""
        terms = [t for words in TOPICS.values() for t in words.split()]
        makers: list[tuple[str, Callable[[], str]]] = [
            ("term", lambda: self.rng.choice(terms)),
            ("two terms", lambda: f"{self.rng.choice(terms)} {self.rng.choice(terms)}"),
            ("ticket", lambda: self.rng.choice(self.numbers or ["12345"])),
            ("common", lambda: self.rng.choice([*VERBS, "ticket", "error", "restart"])),
        ]
        return [(kind, make()) for kind, make in (makers[n % len(makers)] for n in range(count))]


# --- processes ----------------------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    pid: int
    store_path: Path
    key: str


@contextlib.contextmanager
def fake_engine(rate: float) -> Iterator[str]:
    """The fake engine's base URL (``.../v1``): tests/doubles/bench_engine.py pacing model "paced" at ``rate``."""
    with bench_engine(str(rate)) as url:
        yield f"{url}/v1"


def write_config(tmp: Path, port: int, backends: list[Backend]) -> tuple[Path, str]:
    """ThreadWeaver's config, store key file (0600) and password file in ``tmp``; returns (config, key)."""
    key = secrets.token_hex(32)
    key_file = tmp / "store.key"
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(key + "\n")
    (tmp / "password").write_text(auth.hash_password(PASSWORD) + "\n")
    config = {
        "host": "127.0.0.1",
        "port": port,
        "password_file": str(tmp / "password"),
        "store": {"path": str(tmp / "threads.db"), "key_file": str(key_file), "key_env": KEY_ENV},
        "providers": {
            b.provider: {"kind": "crush", "engine": "llamacpp", "base_url": b.base_url, "extra_body": b.extra_body}
            for b in backends
        },
    }
    path = tmp / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path, key


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def threadweaver(tmp: Path, backends: list[Backend]) -> Iterator[Served]:
    port = free_port()
    config, key = write_config(tmp, port, backends)
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    log = tmp / "threadweaver.log"
    with log.open("w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "claw.threadweaver", "--config", str(config)],
            cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/healthz"), process, "ThreadWeaver", log)
        yield Served(url, process.pid, tmp / "threads.db", key)
    finally:
        stop(process, 10)


# --- the two paths ------------------------------------------------------------------------------------------


@dataclass
class StreamTiming:
    ttft_s: float
    duration_s: float
    chunks: int
    chars: int

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.duration_s

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.duration_s


class Session:
    """One httpx client for both paths; ThreadWeaver's requests carry the session token."""

    def __init__(self, client: httpx.Client, served: Served) -> None:
        self.client = client
        self.tw = served.url
        self.pid = served.pid
        response = client.post(f"{self.tw}/login", json={"password": PASSWORD})
        if response.status_code != 200:
            raise BenchError(f"login to ThreadWeaver failed: HTTP {response.status_code} {response.text[:200]}")
        self.auth = {"Authorization": f"Bearer {response.json()['token']}"}
        self._threads: dict[tuple[str, str, int], list[str]] = {}
        self._turns: dict[str, int] = {}

    def cpu_ms(self) -> float:
        """ThreadWeaver's CPU time so far (ms): what it spends per request does not depend on the machine's load
        the way wall-clock latency does."""
        return cpu_seconds(self.pid) * 1000

    def thread(self, backend: Backend, model: str, max_tokens: int) -> str:
        """A conversation with room for another turn; a new one every ``backend.turns`` turns."""
        ids = self._threads.setdefault((backend.provider, model, max_tokens), [])
        if not ids or self._turns[ids[-1]] >= backend.turns:
            body = {"provider": backend.provider, "model": model, "max_output_tokens": max_tokens}
            response = self.client.post(f"{self.tw}/threads", json=body, headers=self.auth)
            check(response, 201, "POST /threads")
            ids.append(response.json()["id"])
            self._turns[ids[-1]] = 0
        self._turns[ids[-1]] += 1
        return ids[-1]

    def direct_complete(self, backend: Backend) -> str:
        body = backend.body(backend.model, backend.reply_tokens)
        response = self.client.post(f"{backend.base_url}/chat/completions", json=body)
        check(response, 200, "the engine")
        return response.json()["choices"][0]["message"]["content"]

    def tw_complete(self, backend: Backend) -> str:
        thread = self.thread(backend, backend.model, backend.reply_tokens)
        response = self.client.post(
            f"{self.tw}/threads/{thread}/messages", json={"content": prompt()}, headers=self.auth
        )
        check(response, 200, "POST /threads/{id}/messages")
        return response.json()["reply"]["content"]

    def direct_stream(self, backend: Backend, model: str, chunks: int) -> StreamTiming:
        body = backend.body(model, chunks, stream=True)
        start = time.perf_counter()
        with self.client.stream("POST", f"{backend.base_url}/chat/completions", json=body) as response:
            check(response, 200, "the engine (stream)")
            return read_stream(response, start, engine_chunks(response))

    def tw_stream(self, backend: Backend, model: str, chunks: int) -> StreamTiming:
        thread = self.thread(backend, model, chunks)
        url = f"{self.tw}/threads/{thread}/messages/stream"
        start = time.perf_counter()
        with self.client.stream("POST", url, json={"content": prompt()}, headers=self.auth) as response:
            check(response, 200, "POST /threads/{id}/messages/stream")
            return read_stream(response, start, threadweaver_chunks(response))

    def search(self, query: str) -> int:
        response = self.client.get(f"{self.tw}/search", params={"q": query}, headers=self.auth)
        check(response, 200, "GET /search")
        return len(response.json())


def prompt() -> str:
    return "In one sentence: is the crush node up?"


def check(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        response.read()
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:300]}")


def engine_chunks(response: httpx.Response) -> Iterator[str]:
    """Content deltas of an OpenAI-style SSE stream."""
    for line in response.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text


def threadweaver_chunks(response: httpx.Response) -> Iterator[str]:
    """Texts of ThreadWeaver's ``chunk`` events; an ``error`` event is a BenchError."""
    for line in response.iter_lines():
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event["type"] == "chunk":
            yield event["text"]
        elif event["type"] == "error":
            raise BenchError(f"ThreadWeaver's stream failed: {event['code']}: {event['message']}")


def read_stream(response: httpx.Response, start: float, chunks: Iterator[str]) -> StreamTiming:
    first = last = 0.0
    count = chars = 0
    for text in chunks:
        last = time.perf_counter()
        first = first or last
        count += 1
        chars += len(text)
    if not count:
        raise BenchError(f"{response.request.url}: the stream had no content")
    # The rate counts the chunks after the first over the time they took (the first one is the TTFT's).
    return StreamTiming(first - start, max(last - first, 1e-9), count - 1, chars)


# --- measurements -------------------------------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def alternate(
    count: int, warmup: int, direct: Callable[[], Any], through: Callable[[], Any]
) -> tuple[list[Any], list[Any]]:
    """``count`` results of each, after ``warmup`` untimed pairs; the order flips every pair."""
    a: list[Any] = []
    b: list[Any] = []
    for n in range(warmup + count):
        if n % 2:
            first, second = direct(), through()
        else:
            second = through()
            first = direct()
        if n >= warmup:
            a.append(first)
            b.append(second)
    return a, b


def measure_complete(session: Session, backend: Backend) -> dict[str, Any]:
    cpu = session.cpu_ms()
    direct, through = alternate(
        backend.requests,
        backend.warmup,
        lambda: timed(lambda: session.direct_complete(backend)),
        lambda: timed(lambda: session.tw_complete(backend)),
    )
    if backend.fixed_reply and {text for _, text in direct} != {text for _, text in through}:
        raise BenchError(f"{backend.label}: ThreadWeaver's replies differ from the engine's")
    cpu = (session.cpu_ms() - cpu) / (backend.warmup + backend.requests)
    d, t = summary_ms([s for s, _ in direct]), summary_ms([s for s, _ in through])
    return {
        "direct": d,
        "threadweaver": t,
        "added_p50_ms": t["p50_ms"] - d["p50_ms"],
        "added_p99_ms": t["p99_ms"] - d["p99_ms"],
        "threadweaver_cpu_ms_per_request": cpu,
    }


def measure_ttft(session: Session, backend: Backend) -> dict[str, Any]:
    chunks = SHORT_REPLY_CHUNKS
    cpu = session.cpu_ms()
    direct, through = alternate(
        backend.requests,
        backend.warmup,
        lambda: session.direct_stream(backend, backend.model, chunks),
        lambda: session.tw_stream(backend, backend.model, chunks),
    )
    d = summary_ms([s.ttft_s for s in direct])
    t = summary_ms([s.ttft_s for s in through])
    return {
        "direct": d,
        "threadweaver": t,
        "overhead_p50_ms": t["p50_ms"] - d["p50_ms"],
        "overhead_p99_ms": t["p99_ms"] - d["p99_ms"],
        "threadweaver_cpu_ms_per_request": (session.cpu_ms() - cpu) / (backend.warmup + backend.requests),
    }


def measure_rate(session: Session, backend: Backend, model: str, chunks: int, runs: int) -> dict[str, Any]:
    direct: list[StreamTiming] = []
    through: list[StreamTiming] = []
    cpu = session.cpu_ms()
    session.direct_stream(backend, model, min(chunks, 50))
    session.tw_stream(backend, model, min(chunks, 50))
    for n in range(runs):
        if n % 2:
            direct.append(session.direct_stream(backend, model, chunks))
            through.append(session.tw_stream(backend, model, chunks))
        else:
            through.append(session.tw_stream(backend, model, chunks))
            direct.append(session.direct_stream(backend, model, chunks))
    d = statistics.median(s.chunks_per_s for s in direct)
    t = statistics.median(s.chunks_per_s for s in through)
    cpu = (session.cpu_ms() - cpu) / (min(chunks, 50) + runs * chunks)
    return {
        "chunks": chunks,
        "runs": runs,
        "direct_chunks_per_s": d,
        "threadweaver_chunks_per_s": t,
        "direct_chars_per_s": statistics.median(s.chars_per_s for s in direct),
        "threadweaver_chars_per_s": statistics.median(s.chars_per_s for s in through),
        "ratio": t / d,
        "threadweaver_cpu_ms_per_chunk": cpu,
    }


def measure_backend(session: Session, backend: Backend, sizes: Sizes) -> dict[str, Any]:
    result: dict[str, Any] = {
        "label": backend.label,
        "warmup": backend.warmup,
        "complete": measure_complete(session, backend),
        "ttft": measure_ttft(session, backend),
    }
    if backend.paced_model:
        result["stream_paced"] = measure_rate(
            session, backend, backend.paced_model, backend.stream_chunks, sizes.stream_runs
        )
        result["stream_paced"]["rate_per_s"] = sizes.stream_rate
    result["stream_unpaced"] = measure_rate(session, backend, backend.model, backend.stream_chunks, sizes.stream_runs)
    return result


def fill_store(served: Served, messages: int, corpus: Corpus) -> dict[str, Any]:
    """``messages`` more messages in conversations of MESSAGES_PER_THREAD, one transaction each."""
    start = time.perf_counter()
    stored = 0
    with ThreadStore(served.store_path, served.key) as store:
        while stored < messages:
            length = min(MESSAGES_PER_THREAD, messages - stored)
            thread = store.create_thread(
                "bench", "imported", title=f"imported conversation {stored // MESSAGES_PER_THREAD}"
            )
            store.add_chain(thread.id, None, corpus.conversation(length))
            stored += length
    elapsed = time.perf_counter() - start
    return {"messages": stored, "seconds": elapsed, "messages_per_s": stored / elapsed}


def measure_search(session: Session, served: Served, corpus: Corpus, count: int) -> dict[str, Any]:
    queries = corpus.queries(WARMUP + count)
    http_s: dict[str, list[float]] = {}
    store_s: dict[str, list[float]] = {}
    hits: list[int] = []
    cpu = session.cpu_ms()
    with ThreadStore(served.store_path, served.key) as store:
        for n, (kind, query) in enumerate(queries):
            over_http, found = timed(lambda q=query: session.search(q))
            direct, _ = timed(lambda q=query: store.search(q))
            if n >= WARMUP:
                http_s.setdefault(kind, []).append(over_http)
                store_s.setdefault(kind, []).append(direct)
                hits.append(found)
    cpu = (session.cpu_ms() - cpu) / len(queries)
    every_http = [s for values in http_s.values() for s in values]
    every_store = [s for values in store_s.values() for s in values]
    return {
        "queries": count,
        "http": summary_ms(every_http),
        "store": summary_ms(every_store),
        "by_kind_p50_ms": {
            kind: {"http": statistics.median(v) * 1000, "store": statistics.median(store_s[kind]) * 1000}
            for kind, v in http_s.items()
        },
        "hits_median": statistics.median(hits),
        "threadweaver_cpu_ms_per_query": cpu,
    }


# --- the run ------------------------------------------------------------------------------------------------


def backends(engine_url: str, sizes: Sizes, engine: str | None, engine_model: str) -> list[Backend]:
    found = [Backend("fake engine", "fake", engine_url, "bench", "paced", sizes.requests, sizes.stream_chunks)]
    # A real model: greedy, every request a first turn (the same prompt both ways), short replies, a few warm-ups.
    if engine:
        found.append(
            Backend(
                f"--engine {engine}",
                "engine",
                engine.rstrip("/"),
                engine_model,
                None,
                sizes.engine_requests,
                64,
                warmup=2,
                turns=1,
                reply_tokens=SHORT_REPLY_CHUNKS,
                fixed_reply=False,
                extra_body={"temperature": 0},
            )
        )
    return found


def run(sizes: Sizes, engine: str | None, engine_model: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "host": f"python {platform.python_version()}, {os.cpu_count()} cores",
        "load_average_before": os.getloadavg()[0],
        "sizes": dataclasses.asdict(sizes),
        "backends": {},
        "memory": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="claw-bench-tw-"))
    try:
        with fake_engine(sizes.stream_rate) as engine_url:
            chosen = backends(engine_url, sizes, engine, engine_model)
            with (
                threadweaver(tmp, chosen) as served,
                httpx.Client(timeout=600, trust_env=False) as client,
            ):
                session = Session(client, served)
                time.sleep(0.5)
                report["memory"]["idle"] = rss(served.pid)
                for backend in chosen:
                    report["backends"][backend.provider] = measure_backend(session, backend, sizes)
                report["memory"]["after_requests"] = rss(served.pid)
                corpus = Corpus()
                report["fill"] = fill_store(served, sizes.messages, corpus)
                report["search"] = measure_search(session, served, corpus, sizes.queries)
                report["memory"]["after_search"] = rss(served.pid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_average_after"] = os.getloadavg()[0]
    report["metrics"] = metrics(report)
    report["targets"] = verdicts(report["metrics"])
    return report


def metrics(report: dict[str, Any]) -> dict[str, float]:
    """The numbers the targets are about (fake engine, so the differences are ThreadWeaver's)."""
    fake = report["backends"]["fake"]
    return {
        "added_p50_ms": fake["complete"]["added_p50_ms"],
        "added_p99_ms": fake["complete"]["added_p99_ms"],
        "ttft_overhead_p50_ms": fake["ttft"]["overhead_p50_ms"],
        "ttft_overhead_p99_ms": fake["ttft"]["overhead_p99_ms"],
        "stream_ratio": fake["stream_paced"]["ratio"],
        "stream_ratio_unpaced": fake["stream_unpaced"]["ratio"],
        "search_p50_ms": report["search"]["http"]["p50_ms"],
        "search_p99_ms": report["search"]["http"]["p99_ms"],
        "store_search_p50_ms": report["search"]["store"]["p50_ms"],
        "idle_rss_mib": report["memory"]["idle"]["rss_mib"],
        "loaded_rss_mib": report["memory"]["after_search"]["rss_mib"],
    }


def verdicts(values: dict[str, float]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "value": values[name],
            "target": f"{op} {limit:g}",
            "pass": values[name] <= limit if op == "<=" else values[name] >= limit,
        }
        for name, op, limit in TARGETS
    }


# --- report -------------------------------------------------------------------------------------------------


def verdict(report: dict[str, Any], name: str) -> str:
    target = report["targets"][name]
    return f"{target['target']:>8}  {'PASS' if target['pass'] else 'MISS'}"


def ms(value: float) -> str:
    return f"{value:8.2f} ms"


def row_line(label: str, direct: str, through: str, added: str, mark: str = "") -> None:
    print(f"  {label:34} {direct:>11} {through:>13} {added:>11}  {mark}".rstrip())


def print_backend(report: dict[str, Any], name: str, row: dict[str, Any]) -> None:
    main = name == "fake"
    complete, ttft = row["complete"], row["ttft"]
    print(f"{row['label']} ({complete['direct']['n']} requests per path, after {row['warmup']} warm-up pairs):")
    row_line("", "direct", "ThreadWeaver", "added")
    for q in ("p50", "p99"):
        key = f"{q}_ms"
        mark = verdict(report, f"added_{key}") if main else ""
        direct, through = ms(complete["direct"][key]), ms(complete["threadweaver"][key])
        row_line(f"reply, not streamed {q}", direct, through, ms(complete[f"added_{key}"]), mark)
    for q in ("p50", "p99"):
        key = f"{q}_ms"
        mark = verdict(report, "ttft_overhead_p50_ms") if main and q == "p50" else ""
        direct, through = ms(ttft["direct"][key]), ms(ttft["threadweaver"][key])
        row_line(f"time to first token {q}", direct, through, ms(ttft[f"overhead_{key}"]), mark)
    replies, streamed = complete["threadweaver_cpu_ms_per_request"], ttft["threadweaver_cpu_ms_per_request"]
    print(f"  ThreadWeaver's own CPU time: {replies:.2f} ms per reply, {streamed:.2f} ms per streamed reply")
    for label, key in (("paced", "stream_paced"), ("unpaced", "stream_unpaced")):
        if key not in row:
            continue
        rate = row[key]
        mark = verdict(report, "stream_ratio") if main and key == "stream_paced" else "(information)"
        pace = f" {rate['rate_per_s']:g}/s" if "rate_per_s" in rate else ""
        direct, through = f"{rate['direct_chunks_per_s']:.0f} ch/s", f"{rate['threadweaver_chunks_per_s']:.0f} ch/s"
        row_line(f"stream {rate['chunks']} chunks, {label}{pace}", direct, through, f"{rate['ratio']:.3f}x", mark)
        print(f"  {'':34} ThreadWeaver CPU {rate['threadweaver_cpu_ms_per_chunk'] * 1000:.0f} us per chunk")


def print_report(report: dict[str, Any]) -> None:
    print(
        f"ThreadWeaver benchmark: {report['host']}, load average {report['load_average_before']:.2f} before, "
        f"{report['load_average_after']:.2f} after (timings are noisy under load)"
    )
    for name, row in report["backends"].items():
        print_backend(report, name, row)
    search, fill = report["search"], report["fill"]
    print(
        f"search over {fill['messages']:,} stored messages (filled in {fill['seconds']:.1f} s, "
        f"{fill['messages_per_s']:,.0f}/s), {search['queries']} queries, median {search['hits_median']:g} hits:"
    )
    row_line("", "p50", "p99", "")
    http, store = search["http"], search["store"]
    row_line("GET /search", ms(http["p50_ms"]), ms(http["p99_ms"]), "", verdict(report, "search_p50_ms"))
    row_line("ThreadStore.search (no HTTP)", ms(store["p50_ms"]), ms(store["p99_ms"]), "")
    kinds = ", ".join(f"{kind} {v['http']:.1f}/{v['store']:.1f}" for kind, v in search["by_kind_p50_ms"].items())
    print(f"  p50 by query kind, http/store ms: {kinds}")
    print(f"  ThreadWeaver CPU {search['threadweaver_cpu_ms_per_query']:.2f} ms per query")
    print("ThreadWeaver resident memory (VmRSS, peak VmHWM):")
    labels = {
        "idle": "idle (started, logged in)",
        "after_requests": "after the requests",
        "after_search": "after the search fill and queries",
    }
    for key, label in labels.items():
        row = report["memory"][key]
        mark = verdict(report, "idle_rss_mib") if key == "idle" else ""
        print(f"  {label:34} {row['rss_mib']:7.1f} MiB  peak {row['peak_mib']:6.1f} MiB  {mark}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help=f"timed requests per path (default {Sizes.requests})")
    parser.add_argument("--messages", type=int, help=f"stored messages for the search (default {Sizes.messages:,})")
    parser.add_argument("--queries", type=int, help=f"timed searches (default {Sizes.queries})")
    parser.add_argument(
        "--stream-chunks", type=int, help=f"chunks per throughput stream (default {Sizes.stream_chunks})"
    )
    parser.add_argument("--stream-rate", type=float, help=f"paced stream, chunks/s (default {Sizes.stream_rate:g})")
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds; for tests)")
    parser.add_argument("--engine", help="also measure against this OpenAI-compatible engine (base URL ending in /v1)")
    parser.add_argument(
        "--engine-requests",
        type=int,
        help=f"timed requests per path against --engine (default {Sizes.engine_requests})",
    )
    parser.add_argument("--engine-model", default="gemma3-270m", help="model name for --engine (default gemma3-270m)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to PATH as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    chosen = {
        "requests": args.requests,
        "messages": args.messages,
        "queries": args.queries,
        "stream_chunks": args.stream_chunks,
        "stream_rate": args.stream_rate,
        "engine_requests": args.engine_requests,
    }
    sizes = dataclasses.replace(sizes, **{k: v for k, v in chosen.items() if v is not None})
    if min(sizes.requests, sizes.messages, sizes.queries, sizes.stream_chunks, sizes.engine_requests) < 2:
        parser.error("--requests, --messages, --queries, --stream-chunks and --engine-requests must be at least 2")
    if sizes.stream_rate <= 0:
        parser.error("--stream-rate must be above 0")
    started = time.perf_counter()
    try:
        report = run(sizes, args.engine, args.engine_model)
    except (BenchError, httpx.HTTPError, OSError) as err:
        print(f"threadweaver benchmark: {err}", file=sys.stderr)
        return 1
    report["wall_s"] = time.perf_counter() - started
    print_report(report)
    print(f"benchmark wall time {report['wall_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
