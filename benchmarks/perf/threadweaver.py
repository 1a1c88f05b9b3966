#!/usr/bin/env python3
"""ThreadWeaver's cost: added latency over calling the engine directly, on the console's path and the gateway's,
against LiteLLM's proxy on the same run; streaming, CPU per streamed chunk, search, resident memory.

One run starts a small OpenAI-compatible engine (the llama.cpp server's wire: ``POST /v1/chat/completions``, JSON
or SSE, fixed replies, so its latency is stable) and ThreadWeaver as it runs on claw: ``python -m claw.threadweaver
--config ...`` (uvicorn, a temporary encrypted store, key file and scrypt password) with the engine as its crush
provider (``engine: llamacpp``). Everything that guards a request is on: prices, a provider spend cap, token caps
(total, per thread, per client), a cap on every thread and on the gateway client (so every request reserves its
worst case and settles it), the hooks pipeline (no hook files), the Origin check and the body limit.

Paths, each measured against the engine called directly:

* ``console``: ``POST /threads/{id}/messages`` and ``.../messages/stream`` with the session token; conversations
  run 10 turns each, so ThreadWeaver also reads, trims and sends some history, as it does in use;
* ``gateway``: ``POST /v1/chat/completions`` (OpenAI's API, JSON and SSE) as a configured gateway client (its own
  bearer key, a USD cap), the same body as the direct request with the model named ``fake/bench``;
* ``relay`` (the floor, information only): :mod:`byte_relay`, a TCP relay that copies bytes and does nothing else,
  in front of the same engine: what one proxy hop costs on this machine before any work (its CPU per chunk is
  mostly the kernel's: a read, a write and the wakeups they cause);
* ``litellm`` (the peer, see --peer): LiteLLM's proxy (``litellm[proxy]``, pinned and hash-checked in a venv of its
  own, :mod:`litellm_peer`), no database, a throw-away master key, the same engine as an OpenAI-compatible
  provider, the same body.

One httpx client over loopback drives every path in one interleaved loop: each round takes the paths in a
rotating order, and every request through a path is paired with a direct request right beside it (which goes
first alternates). Added latency and time-to-first-token (first content chunk) overhead are the p50 and p99 of
those paired differences, so a slow moment of the machine falls on both halves of a pair.

* added latency: a small non-streamed reply; TTFT: a 16-chunk stream; both after warm-up rounds;
* streaming: content chunks/s through each path / direct, the engine pacing --stream-chunks chunks at
  --stream-rate per second (a fast engine), and unpaced (as fast as it goes; information only); and the serving
  process's CPU time (/proc, all threads) over the paced streams divided by their chunks: CPU per streamed chunk;
* search: --messages messages (realistic, varied text) put in the store in bulk (``ThreadStore.add_chain``, one
  transaction per conversation), then p50/p99 of ``GET /search`` and of ``ThreadStore.search`` in this process;
* memory: VmRSS of the ThreadWeaver process idle (started, one login), after the requests, after the search; of
  LiteLLM's proxy (with any children) idle and after the requests.

--peer: ``auto`` (the default) runs LiteLLM when its venv is made already and never installs anything (so the
tests, which run --quick --peer none, never download); ``litellm`` makes the venv first when missing (``make
bench-threadweaver`` passes it: about 30 s and 750 MB once); ``none`` leaves it out. When LiteLLM cannot be
installed or started, the run says why and measures ThreadWeaver alone; the comparisons are then not judged.

With --engine URL (e.g. a llama.cpp server, ``http://127.0.0.1:8080/v1``) the latency and streaming measurements
are repeated against that engine too (console and gateway; fewer requests; a real model varies far more than 1 ms).

Targets (issue #17, PASS/MISS, informational): added latency p50 <= 1 ms and p99 <= 3 ms on both paths; TTFT
overhead p50 <= 1.5 ms on both paths; both paths' added p50 and TTFT overhead p50 <= 0.25x LiteLLM's on the same
run (not judged without LiteLLM); ThreadWeaver's CPU per streamed chunk <= 30 us on both paths; paced streaming
>= 0.98x direct; search p50 <= 20 ms at 100,000 messages; idle RSS <= 80 MiB. The exit status is non-zero only
when a measurement could not run. The default run takes a few minutes on 2 cores (LiteLLM's start alone about
25 s); timings on a loaded machine are noisy (the load average is printed with them), the CPU times less so.

Run: .venv/bin/python benchmarks/perf/threadweaver.py [--peer auto|litellm|none] [--requests 300]
[--messages 100000] [--quick] [--json PATH]
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
from urllib.parse import urlsplit

import httpx
import litellm_peer
import yaml
from claw.threadweaver import auth
from claw.threadweaver.store import ThreadStore
from perfutil import BenchError, bench_engine, cpu_seconds, free_port, percentile, rss, stop, summary_ms, wait_until

REPO = Path(__file__).resolve().parents[2]

# A fresh password per run: the benchmark's throw-away console is a real server on loopback.
PASSWORD = secrets.token_urlsafe(18)
KEY_ENV = "THREADWEAVER_BENCH_STORE_KEY"  # named in the config and removed from ThreadWeaver's environment
GATEWAY_CLIENT = "bench"
WARMUP = 20
TURNS_PER_THREAD = 10
MESSAGES_PER_THREAD = 50
SHORT_REPLY_CHUNKS = 16
# Caps far above what a run spends: every request is checked, reserved and settled, none is refused.
ROOMY_USD = 1_000_000.0
ROOMY_TOKENS = 10**12
PATHS = ("console", "gateway")  # ThreadWeaver's; "litellm" joins them when the peer runs

# (metric, comparison, limit): the targets printed with PASS/MISS (issue #17's goals)
TARGETS: list[tuple[str, str, float]] = [
    ("console_added_p50_ms", "<=", 1.0),
    ("gateway_added_p50_ms", "<=", 1.0),
    ("console_added_p99_ms", "<=", 3.0),
    ("gateway_added_p99_ms", "<=", 3.0),
    ("console_ttft_added_p50_ms", "<=", 1.5),
    ("gateway_ttft_added_p50_ms", "<=", 1.5),
    ("added_vs_litellm", "<=", 0.25),
    ("ttft_vs_litellm", "<=", 0.25),
    ("console_cpu_us_per_chunk", "<=", 30.0),
    ("gateway_cpu_us_per_chunk", "<=", 30.0),
    ("stream_ratio", ">=", 0.98),
    ("search_p50_ms", "<=", 20.0),
    ("idle_rss_mib", "<=", 80.0),
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
    """An engine as every path sees it: its base URL (ending in /v1) and ThreadWeaver provider name."""

    label: str
    provider: str
    base_url: str
    model: str  # for the short replies
    paced_model: str | None  # for the paced stream; None: no paced stream (a real engine paces itself)
    requests: int
    stream_chunks: int
    warmup: int = WARMUP  # untimed rounds first
    turns: int = TURNS_PER_THREAD  # turns per conversation (1: every request is a first turn, as sent directly)
    reply_tokens: int = 64  # max_tokens of the non-streamed replies
    fixed_reply: bool = True  # the engine always answers the same text (checked)
    extra_body: dict[str, Any] = field(default_factory=dict)  # in every path's engine requests
    capped: bool = True  # prices, spend and token caps configured for this provider

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
    gateway_key: str


@contextlib.contextmanager
def fake_engine(rate: float) -> Iterator[str]:
    """The fake engine's base URL (``.../v1``): tests/doubles/bench_engine.py pacing model "paced" at ``rate``."""
    with bench_engine(str(rate)) as url:
        yield f"{url}/v1"


def secret_file(path: Path, value: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(value + "\n")


def write_config(tmp: Path, port: int, backends: list[Backend]) -> tuple[Path, str, str]:
    """ThreadWeaver's config, store key file (0600), gateway client key and password file in ``tmp``; returns
    (config, store key, gateway key)."""
    key, gateway_key = secrets.token_hex(32), secrets.token_urlsafe(32)
    secret_file(tmp / "store.key", key)
    secret_file(tmp / "gateway.key", gateway_key)
    (tmp / "password").write_text(auth.hash_password(PASSWORD) + "\n")
    capped = [b.provider for b in backends if b.capped]
    config = {
        "host": "127.0.0.1",
        "port": port,
        "password_file": str(tmp / "password"),
        "store": {"path": str(tmp / "threads.db"), "key_file": str(tmp / "store.key"), "key_env": KEY_ENV},
        "providers": {
            b.provider: {"kind": "crush", "engine": "llamacpp", "base_url": b.base_url, "extra_body": b.extra_body}
            for b in backends
        },
        # A price, so the spend is counted and capped in USD; caps far out of reach, so none refuses.
        "prices": {name: {"*": [0.1, 0.4]} for name in capped},
        "caps": {name: ROOMY_USD for name in capped},
        "token_caps": {
            name: {"total": ROOMY_TOKENS, "per_thread": ROOMY_TOKENS, "per_client": ROOMY_TOKENS} for name in capped
        },
        "gateway": {"clients": {GATEWAY_CLIENT: {"key_file": str(tmp / "gateway.key"), "cap_usd": ROOMY_USD}}},
    }
    path = tmp / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path, key, gateway_key


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def threadweaver(tmp: Path, backends: list[Backend]) -> Iterator[Served]:
    port = free_port()
    config, key, gateway_key = write_config(tmp, port, backends)
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
        yield Served(url, process.pid, tmp / "threads.db", key, gateway_key)
    finally:
        stop(process, 10)


def tree_rss(pid: int) -> dict[str, float]:
    """:func:`perfutil.rss` of a process and its children (LiteLLM's proxy may start some)."""
    total = rss(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.is_file() else []:
        with contextlib.suppress(OSError, BenchError):
            more = tree_rss(int(child))
            total = {key: total[key] + more[key] for key in total}
    return total


@dataclass
class PeerRun:
    """LiteLLM's proxy, when it runs; ``problem`` says why it does not otherwise."""

    proxy: litellm_peer.Peer | None = None
    problem: str | None = None


@contextlib.contextmanager
def peer(choice: str, engine_url: str, tmp: Path) -> Iterator[PeerRun]:
    """LiteLLM's proxy on the fake engine as --peer asks; never fails the run (the problem is reported)."""
    if choice == "none":
        yield PeerRun(problem="left out (--peer none)")
        return
    python = litellm_peer.venv()
    if python is None and choice == "auto":
        yield PeerRun(problem=f"not installed ({litellm_peer.home()}); --peer litellm installs it")
        return
    stack = contextlib.ExitStack()
    try:  # only installing and starting it: a failure of the measurements is the run's
        if python is None:
            print(f"installing litellm[proxy]=={litellm_peer.VERSION} into {litellm_peer.home()} ...", flush=True)
            python = litellm_peer.install(tmp / "litellm-install.log")
        proxy = stack.enter_context(litellm_peer.proxy(python, engine_url, ["bench", "paced"], tmp))
    except BenchError as err:
        print(f"LiteLLM: {err}", file=sys.stderr)
        yield PeerRun(problem=str(err).splitlines()[0])
        return
    with stack:
        yield PeerRun(proxy)


@contextlib.contextmanager
def byte_relay(engine_url: str) -> Iterator[tuple[str, int]]:
    """The floor path (:mod:`byte_relay`) in front of the fake engine: its base URL (``.../v1``) and PID."""
    port = str(urlsplit(engine_url).port)
    script = Path(__file__).with_name("byte_relay.py")
    process = subprocess.Popen([sys.executable, str(script), port], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise BenchError(f"the byte relay did not start (exit {process.poll()})")
        yield f"http://127.0.0.1:{int(line)}/v1", process.pid
    finally:
        stop(process)


# --- the paths ----------------------------------------------------------------------------------------------


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


@dataclass
class OpenAI:
    """An OpenAI-compatible endpoint: the engine itself, ThreadWeaver's gateway or LiteLLM's proxy."""

    base_url: str  # ending in /v1
    headers: dict[str, str]
    prefix: str = ""  # before the model's name (the gateway's "provider/")


class Session:
    """One httpx client for every path; ThreadWeaver's console requests carry the session token."""

    def __init__(
        self,
        client: httpx.Client,
        served: Served,
        proxy: litellm_peer.Peer | None,
        relay: tuple[str, int] | None = None,
    ) -> None:
        self.client = client
        self.tw = served.url
        self.pids = {"console": served.pid, "gateway": served.pid}
        self.cpu_s: dict[str, float] = {}  # each path's serving process's CPU time over its timed requests
        response = client.post(f"{self.tw}/login", json={"password": PASSWORD})
        if response.status_code != 200:
            raise BenchError(f"login to ThreadWeaver failed: HTTP {response.status_code} {response.text[:200]}")
        self.auth = {"Authorization": f"Bearer {response.json()['token']}"}
        self.gateway_auth = {"Authorization": f"Bearer {served.gateway_key}"}
        self.proxy = proxy
        if proxy is not None:
            self.pids["litellm"] = proxy.pid
        self.relay_url = relay[0] if relay else ""
        if relay is not None:
            self.pids["relay"] = relay[1]
        self._threads: dict[tuple[str, str, int], list[str]] = {}
        self._turns: dict[str, int] = {}

    @property
    def paths(self) -> list[str]:
        return list(self.pids)

    def endpoint(self, path: str, backend: Backend) -> OpenAI:
        if path == "direct":
            return OpenAI(backend.base_url, {})
        if path == "gateway":
            return OpenAI(f"{self.tw}/v1", self.gateway_auth, f"{backend.provider}/")
        if path == "relay":
            return OpenAI(self.relay_url, {})
        assert path == "litellm" and self.proxy is not None
        return OpenAI(self.proxy.url, self.proxy.headers)

    def cpu_ms(self, path: str = "console") -> float:
        """The path's serving process's CPU time so far (ms): what it spends per request does not depend on the
        machine's load the way wall-clock latency does."""
        return cpu_seconds(self.pids[path]) * 1000

    def counted(self, path: str, call: Callable[[], Any]) -> Any:
        """``call()``, its serving process's CPU time added to the path's (read outside the timed part)."""
        before = cpu_seconds(self.pids[path])
        result = call()
        self.cpu_s[path] = self.cpu_s.get(path, 0.0) + cpu_seconds(self.pids[path]) - before
        return result

    def thread(self, backend: Backend, model: str, max_tokens: int) -> str:
        """A conversation with room for another turn; a new one every ``backend.turns`` turns."""
        ids = self._threads.setdefault((backend.provider, model, max_tokens), [])
        if not ids or self._turns[ids[-1]] >= backend.turns:
            body: dict[str, Any] = {"provider": backend.provider, "model": model, "max_output_tokens": max_tokens}
            if backend.capped:
                body["cap_usd"] = ROOMY_USD
            response = self.client.post(f"{self.tw}/threads", json=body, headers=self.auth)
            check(response, 201, "POST /threads")
            ids.append(response.json()["id"])
            self._turns[ids[-1]] = 0
        self._turns[ids[-1]] += 1
        return ids[-1]

    def complete(self, path: str, backend: Backend) -> str:
        """A short reply, not streamed, through ``path`` (``direct``, ``console``, ``gateway``, ``litellm``)."""
        if path == "console":
            thread = self.thread(backend, backend.model, backend.reply_tokens)
            url = f"{self.tw}/threads/{thread}/messages"
            response = self.client.post(url, json={"content": prompt()}, headers=self.auth)
            check(response, 200, "POST /threads/{id}/messages")
            return response.json()["reply"]["content"]
        end = self.endpoint(path, backend)
        body = backend.body(end.prefix + backend.model, backend.reply_tokens)
        response = self.client.post(f"{end.base_url}/chat/completions", json=body, headers=end.headers)
        check(response, 200, f"{path}: POST /v1/chat/completions")
        return response.json()["choices"][0]["message"]["content"]

    def stream(self, path: str, backend: Backend, model: str, chunks: int) -> StreamTiming:
        if path == "console":
            thread = self.thread(backend, model, chunks)
            url = f"{self.tw}/threads/{thread}/messages/stream"
            start = time.perf_counter()
            with self.client.stream("POST", url, json={"content": prompt()}, headers=self.auth) as response:
                check(response, 200, "POST /threads/{id}/messages/stream")
                return read_stream(response, start, threadweaver_chunks(response))
        end = self.endpoint(path, backend)
        body = backend.body(end.prefix + model, chunks, stream=True)
        start = time.perf_counter()
        with self.client.stream("POST", f"{end.base_url}/chat/completions", json=body, headers=end.headers) as r:
            check(r, 200, f"{path}: POST /v1/chat/completions (stream)")
            return read_stream(r, start, openai_chunks(r))

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


def openai_chunks(response: httpx.Response) -> Iterator[str]:
    """Content deltas of an OpenAI-style SSE stream; an error event is a BenchError."""
    for line in response.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        if "error" in event:
            raise BenchError(f"{response.request.url}: the stream failed: {event['error']}")
        for choice in event.get("choices") or []:
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


Pairs = dict[str, list[tuple[Any, Any]]]


def interleave(count: int, warmup: int, direct: Callable[[], Any], paths: dict[str, Callable[[], Any]]) -> Pairs:
    """``count`` (direct, through) pairs per path after ``warmup`` untimed rounds. A round takes every path once,
    in an order that rotates round by round; each request through a path has its own direct request beside it,
    before or after it in turn."""
    names = list(paths)
    pairs: Pairs = {name: [] for name in names}
    for n in range(warmup + count):
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:
            if (n + names.index(name)) % 2:  # each path's order flips round by round
                first = direct()
                second = paths[name]()
            else:
                second = paths[name]()
                first = direct()
            if n >= warmup:
                pairs[name].append((first, second))
    return pairs


def paired(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """Both sides' summaries and the p50/p99 of the paired differences (through minus direct), in ms."""
    differences = [(through - direct) * 1000 for direct, through in pairs]
    return {
        "direct": summary_ms([direct for direct, _ in pairs]),
        "through": summary_ms([through for _, through in pairs]),
        "added_p50_ms": statistics.median(differences),
        "added_p99_ms": percentile(differences, 99),
    }


def cpu_per_request(session: Session, rounds: int) -> dict[str, float]:
    """Each path's serving CPU time (ms) per request over the last loop; the counters start again."""
    spent, session.cpu_s = session.cpu_s, {}
    return {path: seconds * 1000 / rounds for path, seconds in spent.items()}


def measure_complete(session: Session, backend: Backend, paths: list[str]) -> dict[str, Any]:
    def through(path: str) -> Callable[[], tuple[float, str]]:
        return lambda: session.counted(path, lambda: timed(lambda: session.complete(path, backend)))

    pairs = interleave(
        backend.requests,
        backend.warmup,
        lambda: timed(lambda: session.complete("direct", backend)),
        {path: through(path) for path in paths},
    )
    cpu = cpu_per_request(session, backend.warmup + backend.requests)
    result: dict[str, Any] = {}
    for path, found in pairs.items():
        if backend.fixed_reply and {text for _, text in (a for a, _ in found)} != {
            text for _, text in (b for _, b in found)
        }:
            raise BenchError(f"{backend.label}: the replies through {path} differ from the engine's")
        result[path] = paired([(a[0], b[0]) for a, b in found]) | {"cpu_ms_per_request": cpu[path]}
    return result


def measure_ttft(session: Session, backend: Backend, paths: list[str]) -> dict[str, Any]:
    chunks = SHORT_REPLY_CHUNKS

    def through(path: str) -> Callable[[], StreamTiming]:
        return lambda: session.counted(path, lambda: session.stream(path, backend, backend.model, chunks))

    pairs = interleave(
        backend.requests,
        backend.warmup,
        lambda: session.stream("direct", backend, backend.model, chunks),
        {path: through(path) for path in paths},
    )
    cpu = cpu_per_request(session, backend.warmup + backend.requests)
    return {
        path: paired([(a.ttft_s, b.ttft_s) for a, b in found]) | {"cpu_ms_per_request": cpu[path]}
        for path, found in pairs.items()
    }


def measure_rate(session: Session, backend: Backend, path: str, model: str, chunks: int, runs: int) -> dict[str, Any]:
    """Streams of ``chunks`` through ``path`` and directly, alternating; the path's serving process's CPU time
    over its streams (nothing else asks it meanwhile) per chunk."""
    direct: list[StreamTiming] = []
    through: list[StreamTiming] = []
    warm = min(chunks, 50)
    cpu = session.cpu_ms(path)
    session.stream("direct", backend, model, warm)
    session.stream(path, backend, model, warm)
    for n in range(runs):
        if n % 2:
            direct.append(session.stream("direct", backend, model, chunks))
            through.append(session.stream(path, backend, model, chunks))
        else:
            through.append(session.stream(path, backend, model, chunks))
            direct.append(session.stream("direct", backend, model, chunks))
    cpu = (session.cpu_ms(path) - cpu) / (warm + runs * chunks)
    d = statistics.median(s.chunks_per_s for s in direct)
    t = statistics.median(s.chunks_per_s for s in through)
    return {
        "chunks": chunks,
        "runs": runs,
        "direct_chunks_per_s": d,
        "through_chunks_per_s": t,
        "direct_chars_per_s": statistics.median(s.chars_per_s for s in direct),
        "through_chars_per_s": statistics.median(s.chars_per_s for s in through),
        "ratio": t / d,
        "cpu_us_per_chunk": cpu * 1000,
    }


def measure_backend(session: Session, backend: Backend, sizes: Sizes, paths: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "label": backend.label,
        "warmup": backend.warmup,
        "paths": paths,
        "complete": measure_complete(session, backend, paths),
        "ttft": measure_ttft(session, backend, paths),
        "stream_paced": {},
        "stream_unpaced": {},
    }
    for path in paths:
        if backend.paced_model:
            paced = measure_rate(session, backend, path, backend.paced_model, backend.stream_chunks, sizes.stream_runs)
            result["stream_paced"][path] = paced | {"rate_per_s": sizes.stream_rate}
        result["stream_unpaced"][path] = measure_rate(
            session, backend, path, backend.model, backend.stream_chunks, sizes.stream_runs
        )
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
                capped=False,
            )
        )
    return found


def run(sizes: Sizes, engine: str | None, engine_model: str, peer_choice: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "host": f"python {platform.python_version()}, {os.cpu_count()} cores",
        "load_average_before": os.getloadavg()[0],
        "sizes": dataclasses.asdict(sizes),
        "backends": {},
        "memory": {},
        "litellm": {"version": litellm_peer.VERSION},
    }
    tmp = Path(tempfile.mkdtemp(prefix="claw-bench-tw-"))
    try:
        with (
            fake_engine(sizes.stream_rate) as engine_url,
            peer(peer_choice, engine_url, tmp) as other,
            byte_relay(engine_url) as relay,
        ):
            report["litellm"]["problem"] = other.problem
            if other.proxy is not None:
                time.sleep(0.5)
                report["litellm"]["memory"] = {"idle": tree_rss(other.proxy.pid)}
            chosen = backends(engine_url, sizes, engine, engine_model)
            with (
                threadweaver(tmp, chosen) as served,
                httpx.Client(timeout=600, trust_env=False) as client,
            ):
                session = Session(client, served, other.proxy, relay)
                time.sleep(0.5)
                report["memory"]["idle"] = rss(served.pid)
                for n, backend in enumerate(chosen):
                    paths = session.paths if n == 0 else list(PATHS)  # LiteLLM and the relay: the fake engine only
                    report["backends"][backend.provider] = measure_backend(session, backend, sizes, paths)
                report["memory"]["after_requests"] = rss(served.pid)
                if other.proxy is not None:
                    report["litellm"]["memory"]["after_requests"] = tree_rss(other.proxy.pid)
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


def ratio(mine: float, theirs: float | None) -> float | None:
    """ThreadWeaver's added time as a share of LiteLLM's (None without LiteLLM, or when LiteLLM added none)."""
    return None if theirs is None or theirs <= 0 else mine / theirs


def metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """The numbers the targets are about (fake engine, so the differences are the serving process's); the
    ``litellm_*`` ones and the comparisons are None when LiteLLM did not run."""
    fake = report["backends"]["fake"]
    complete, ttft, paced = fake["complete"], fake["ttft"], fake["stream_paced"]
    values: dict[str, float | None] = {}
    for path in ("console", "gateway", "litellm", "relay"):
        here = path in complete
        values[f"{path}_added_p50_ms"] = complete[path]["added_p50_ms"] if here else None
        values[f"{path}_added_p99_ms"] = complete[path]["added_p99_ms"] if here else None
        values[f"{path}_ttft_added_p50_ms"] = ttft[path]["added_p50_ms"] if here else None
        values[f"{path}_ttft_added_p99_ms"] = ttft[path]["added_p99_ms"] if here else None
        values[f"{path}_cpu_us_per_chunk"] = paced[path]["cpu_us_per_chunk"] if here else None
    mine_added = max(values["console_added_p50_ms"] or 0.0, values["gateway_added_p50_ms"] or 0.0)
    mine_ttft = max(values["console_ttft_added_p50_ms"] or 0.0, values["gateway_ttft_added_p50_ms"] or 0.0)
    memory = report["litellm"].get("memory", {})
    values.update(
        {
            "added_vs_litellm": ratio(mine_added, values["litellm_added_p50_ms"]),
            "ttft_vs_litellm": ratio(mine_ttft, values["litellm_ttft_added_p50_ms"]),
            "stream_ratio": paced["console"]["ratio"],
            "gateway_stream_ratio": paced["gateway"]["ratio"],
            "stream_ratio_unpaced": fake["stream_unpaced"]["console"]["ratio"],
            "search_p50_ms": report["search"]["http"]["p50_ms"],
            "search_p99_ms": report["search"]["http"]["p99_ms"],
            "store_search_p50_ms": report["search"]["store"]["p50_ms"],
            "idle_rss_mib": report["memory"]["idle"]["rss_mib"],
            "loaded_rss_mib": report["memory"]["after_search"]["rss_mib"],
            "litellm_idle_rss_mib": memory["idle"]["rss_mib"] if memory else None,
            "litellm_loaded_rss_mib": memory["after_requests"]["rss_mib"] if memory else None,
        }
    )
    return values


def verdicts(values: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """Each target's value and PASS (True) / MISS (False); ``pass`` is None when it was not measured."""
    found = {}
    for name, op, limit in TARGETS:
        value = values[name]
        judged = None if value is None else (value <= limit if op == "<=" else value >= limit)
        found[name] = {"value": value, "target": f"{op} {limit:g}", "pass": judged}
    return found


# --- report -------------------------------------------------------------------------------------------------

LABELS = {"console": "console", "gateway": "gateway /v1", "litellm": "LiteLLM proxy", "relay": "floor: byte relay"}


def verdict(report: dict[str, Any], name: str) -> str:
    target = report["targets"][name]
    mark = "n/a" if target["pass"] is None else "PASS" if target["pass"] else "MISS"
    return f"{target['target']:>8}  {mark}"


def ms(value: float) -> str:
    return f"{value:8.2f} ms"


def row_line(label: str, direct: str, through: str, added: str, mark: str = "") -> None:
    print(f"  {label:34} {direct:>11} {through:>13} {added:>11}  {mark}".rstrip())


def judged(report: dict[str, Any], main: bool, name: str) -> str:
    return verdict(report, name) if main and name in report["targets"] else ""


def print_backend(report: dict[str, Any], name: str, row: dict[str, Any]) -> None:
    main = name == "fake"
    complete, ttft = row["complete"], row["ttft"]
    count = next(iter(complete.values()))["direct"]["n"]
    print(
        f"{row['label']} ({count} paired requests per path, interleaved, after {row['warmup']} warm-up rounds; "
        "added: p50/p99 of the paired differences):"
    )
    row_line("", "direct", "through", "added")
    for path in row["paths"]:
        for what, data, key in (("reply", complete, "added"), ("TTFT", ttft, "ttft_added")):
            for q in ("p50", "p99"):
                side = data[path]
                mark = judged(report, main, f"{path}_{key}_{q}_ms")
                label = f"{LABELS[path]}: {what} {q}"
                row_line(
                    label,
                    ms(side["direct"][f"{q}_ms"]),
                    ms(side["through"][f"{q}_ms"]),
                    ms(side[f"added_{q}_ms"]),
                    mark,
                )
        cpu_reply, cpu_stream = complete[path]["cpu_ms_per_request"], ttft[path]["cpu_ms_per_request"]
        print(f"  {'':34} its CPU: {cpu_reply:.2f} ms per reply, {cpu_stream:.2f} ms per 16-chunk stream")
    for label, key in (("paced", "stream_paced"), ("unpaced", "stream_unpaced")):
        for path, rate in row[key].items():
            mark = judged(report, main and key == "stream_paced" and path == "console", "stream_ratio")
            pace = f" {rate['rate_per_s']:g}/s" if "rate_per_s" in rate else ""
            direct, through = f"{rate['direct_chunks_per_s']:.0f} ch/s", f"{rate['through_chunks_per_s']:.0f} ch/s"
            title = f"{LABELS[path]}: {rate['chunks']} ch {label}{pace}"
            row_line(title, direct, through, f"{rate['ratio']:.3f}x", mark or "")
            cpu_mark = judged(report, main and key == "stream_paced", f"{path}_cpu_us_per_chunk")
            row_line("", "", f"{rate['cpu_us_per_chunk']:.0f} us CPU/ch", "", cpu_mark)
    if main:
        for name_, what in (("added_vs_litellm", "added p50"), ("ttft_vs_litellm", "TTFT added p50")):
            value = report["metrics"][name_]
            shown = "n/a" if value is None else f"{value:.3f}x"
            row_line(f"ThreadWeaver / LiteLLM, {what}", "", "", shown, verdict(report, name_))


def print_report(report: dict[str, Any]) -> None:
    print(
        f"ThreadWeaver benchmark: {report['host']}, load average {report['load_average_before']:.2f} before, "
        f"{report['load_average_after']:.2f} after (timings are noisy under load)"
    )
    peer_line = report["litellm"]["problem"] or "running (same engine, same loop)"
    print(f"LiteLLM {report['litellm']['version']} (the peer): {peer_line}")
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
    print("resident memory (VmRSS, peak VmHWM):")
    labels = {
        "idle": "ThreadWeaver idle (started, login)",
        "after_requests": "ThreadWeaver after the requests",
        "after_search": "ThreadWeaver after fill and search",
    }
    for key, label in labels.items():
        row = report["memory"][key]
        mark = verdict(report, "idle_rss_mib") if key == "idle" else ""
        print(f"  {label:36} {row['rss_mib']:7.1f} MiB  peak {row['peak_mib']:6.1f} MiB  {mark}".rstrip())
    for key, row in report["litellm"].get("memory", {}).items():
        label = f"LiteLLM {'idle (started)' if key == 'idle' else 'after the requests'}"
        print(f"  {label:36} {row['rss_mib']:7.1f} MiB  peak {row['peak_mib']:6.1f} MiB")


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
    parser.add_argument(
        "--peer",
        choices=["auto", "litellm", "none"],
        default="auto",
        help="LiteLLM's proxy alongside: auto (if its venv is made; never installs), litellm (install when "
        "missing), none",
    )
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
        report = run(sizes, args.engine, args.engine_model, args.peer)
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
