"""benchmarks/perf/threadweaver.py in --quick mode: it runs end to end and reports every metric (never judged);
without LiteLLM (--peer none: a test never installs or starts it), so the comparisons are reported as not measured.
The paired differences and the verdicts are checked on their own."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PERF = REPO / "benchmarks" / "perf"
SCRIPT = PERF / "threadweaver.py"
PATH_METRICS = {
    f"{path}_{name}"
    for path in ("console", "gateway", "litellm", "relay")
    for name in ("added_p50_ms", "added_p99_ms", "ttft_added_p50_ms", "ttft_added_p99_ms", "cpu_us_per_chunk")
}
METRICS = PATH_METRICS | {
    "added_vs_litellm",
    "ttft_vs_litellm",
    "stream_ratio",
    "gateway_stream_ratio",
    "stream_ratio_unpaced",
    "search_p50_ms",
    "search_p99_ms",
    "store_search_p50_ms",
    "idle_rss_mib",
    "loaded_rss_mib",
    "litellm_idle_rss_mib",
    "litellm_loaded_rss_mib",
}
LITELLM = {name for name in METRICS if "litellm" in name}
TARGETS = {
    "console_added_p50_ms",
    "gateway_added_p50_ms",
    "console_added_p99_ms",
    "gateway_added_p99_ms",
    "console_ttft_added_p50_ms",
    "gateway_ttft_added_p50_ms",
    "added_vs_litellm",
    "ttft_vs_litellm",
    "console_cpu_us_per_chunk",
    "gateway_cpu_us_per_chunk",
    "stream_ratio",
    "search_p50_ms",
    "idle_rss_mib",
}


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(PERF))
    try:
        import threadweaver

        yield threadweaver
    finally:
        sys.path.remove(str(PERF))


def test_quick_run_reports_every_metric(tmp_path):
    out = tmp_path / "threadweaver.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--peer", "none", "--json", str(out)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["metrics"]) == METRICS
    for name, value in report["metrics"].items():
        assert value is None if name in LITELLM else isinstance(value, float), (name, value)
    assert set(report["targets"]) == TARGETS
    for name, target in report["targets"].items():
        judged = target["pass"] is not None
        assert judged == (name not in LITELLM), name  # reported, not judged; the comparisons need LiteLLM
    assert report["litellm"]["problem"] == "left out (--peer none)"
    fake = report["backends"]["fake"]
    assert fake["paths"] == ["console", "gateway", "relay"]  # the byte relay: the floor, never judged
    for part in ("complete", "ttft", "stream_paced", "stream_unpaced"):
        assert set(fake[part]) == {"console", "gateway", "relay"}, part
    assert all(fake["complete"][path]["cpu_ms_per_request"] > 0 for path in ("console", "gateway"))
    assert "floor: byte relay" in done.stdout
    assert report["fill"]["messages"] == report["sizes"]["messages"] == 2_000
    assert set(report["memory"]) == {"idle", "after_requests", "after_search"}
    judged = len(TARGETS - LITELLM)
    assert done.stdout.count("PASS") + done.stdout.count("MISS") == judged
    assert "LiteLLM 1." in done.stdout and "left out (--peer none)" in done.stdout


def test_added_time_is_taken_from_paired_differences(bench):
    # The direct side is slow in the second half, the other side 1 ms slower than its own pair every time: the
    # paired difference is 1 ms throughout, whereas the percentiles' difference would not be.
    pairs = [(0.001, 0.002)] * 50 + [(0.010, 0.011)] * 50
    found = bench.paired(pairs)
    assert found["added_p50_ms"] == pytest.approx(1.0)
    assert found["added_p99_ms"] == pytest.approx(1.0)
    assert found["through"]["n"] == found["direct"]["n"] == 100


def test_every_request_through_a_path_has_a_direct_one_beside_it(bench):
    calls: list[str] = []

    def call(name):
        return lambda: calls.append(name) or name

    pairs = bench.interleave(4, 1, call("direct"), {"a": call("a"), "b": call("b")})
    assert {name: len(found) for name, found in pairs.items()} == {"a": 4, "b": 4}
    assert all(found == [("direct", name)] * 4 for name, found in pairs.items())
    assert len(calls) == 2 * 2 * 5
    # Each path's request sits right next to a direct one, before it in one round and after it in the next.
    rounds = [calls[n : n + 4] for n in range(0, len(calls), 4)]
    assert all(sorted(r) == ["a", "b", "direct", "direct"] for r in rounds)
    for name in ("a", "b"):
        position = [r.index(name) for r in rounds]
        # Its pair is (0, 1) or (2, 3) of the round; it goes first in one round and second in the next.
        assert all(r[p ^ 1] == "direct" for r, p in zip(rounds, position, strict=True)), rounds
        before = [p % 2 == 0 for p in position]
        assert all(x != y for x, y in itertools.pairwise(before)), rounds


def test_verdicts_leave_out_what_was_not_measured(bench):
    values = dict.fromkeys(METRICS, 0.5) | {"added_vs_litellm": None, "stream_ratio": 0.5}
    found = bench.verdicts(values)
    assert found["added_vs_litellm"]["pass"] is None
    assert found["console_added_p50_ms"]["pass"] is True
    assert found["stream_ratio"]["pass"] is False  # ">= 0.98"
    assert bench.ratio(0.5, None) is None and bench.ratio(0.5, 2.0) == 0.25


def test_litellm_that_cannot_be_had_is_reported_and_the_run_goes_on(bench, monkeypatch, tmp_path):
    peer = bench.litellm_peer
    monkeypatch.setattr(peer, "venv", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with bench.peer("none", "http://127.0.0.1:9/v1", tmp_path) as found:
        assert (found.proxy, found.problem) == (None, "left out (--peer none)")
    with bench.peer("auto", "http://127.0.0.1:9/v1", tmp_path) as found:  # auto never installs
        assert found.proxy is None and found.problem.startswith("not installed (")

    def no_index(log=None):
        raise bench.BenchError(f"LiteLLM {peer.VERSION} could not be installed in {peer.home()}: pip failed\nmore")

    monkeypatch.setattr(peer, "install", no_index)
    with bench.peer("litellm", "http://127.0.0.1:9/v1", tmp_path) as found:
        assert found.proxy is None and found.problem.endswith("pip failed")
    # A failure while LiteLLM runs is the measurement's, not taken for LiteLLM's; the proxy is stopped.
    stopped = []

    @contextlib.contextmanager
    def running(*args):
        try:
            yield "the proxy"
        finally:
            stopped.append(True)

    monkeypatch.setattr(peer, "venv", lambda: tmp_path / "python")
    monkeypatch.setattr(peer, "proxy", running)
    with pytest.raises(bench.BenchError, match="the measurement's own"), bench.peer("auto", "x", tmp_path) as found:
        assert found.proxy == "the proxy"
        raise bench.BenchError("the measurement's own")
    assert stopped == [True]
