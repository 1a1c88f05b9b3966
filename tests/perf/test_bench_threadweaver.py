"""benchmarks/perf/threadweaver.py in --quick mode: it runs end to end and reports every metric (never judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "perf" / "threadweaver.py"
METRICS = {
    "added_p50_ms",
    "added_p99_ms",
    "ttft_overhead_p50_ms",
    "ttft_overhead_p99_ms",
    "stream_ratio",
    "stream_ratio_unpaced",
    "search_p50_ms",
    "search_p99_ms",
    "store_search_p50_ms",
    "idle_rss_mib",
    "loaded_rss_mib",
}
TARGETS = {"added_p50_ms", "added_p99_ms", "ttft_overhead_p50_ms", "stream_ratio", "search_p50_ms", "idle_rss_mib"}


def test_quick_run_reports_every_metric(tmp_path):
    out = tmp_path / "threadweaver.json"
    # The checkout's own apps first, whatever the venv's editable install points at.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "apps"), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["metrics"]) == METRICS
    assert all(isinstance(value, float) for value in report["metrics"].values())
    assert set(report["targets"]) == TARGETS
    for target in report["targets"].values():
        assert isinstance(target["pass"], bool) and target["value"] is not None  # reported, not judged
    fake = report["backends"]["fake"]
    assert {"complete", "ttft", "stream_paced", "stream_unpaced"} <= set(fake)
    assert fake["complete"]["threadweaver_cpu_ms_per_request"] > 0
    assert report["fill"]["messages"] == report["sizes"]["messages"] == 2_000
    assert set(report["memory"]) == {"idle", "after_requests", "after_search"}
    assert done.stdout.count("PASS") + done.stdout.count("MISS") == len(TARGETS)
