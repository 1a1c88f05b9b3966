"""The node's last pull-mode run (role pull: ``/var/lib/claw/pull-result.json``) as metrics, for both exporters.

claw-pull writes the file atomically after each run: ``revision`` (the commit pulled), ``outcome`` (one of
:data:`OUTCOMES`), ``started`` and ``finished`` (ISO 8601 with the offset), ``message`` (the failing check's), and
``last_success`` (``{revision, finished}`` of the last run that ended updated or unchanged). The exporters read it
afresh on each scrape and emit ``<prefix>_pull_*`` (claw_ on the claw exporter, crush_ on the crush exporter):

- ``<prefix>_pull_last_outcome{outcome, revision}``: 1 for the last run's outcome, 0 for the others;
- ``<prefix>_pull_last_timestamp_seconds``: when the last run ended; ``<prefix>_pull_last_duration_seconds``;
- ``<prefix>_pull_last_success_timestamp_seconds``: when a run last ended updated or unchanged.

The message is not exported (free text). A claw node's pulled run reads its crush's
``crush_pull_last_outcome{outcome="updated"|"unchanged", revision=<its own>} 1`` before it switches anything.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("claw.exporters.pull")

OUTCOMES = ("updated", "unchanged", "rolled back", "failed", "waiting-for-crush")
SUCCESS = frozenset({"updated", "unchanged"})
DEFAULT_RESULT_FILE = Path("/var/lib/claw/pull-result.json")


def families(prefix: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The pull families of an exporter whose metrics start with ``prefix`` (claw or crush): name -> (help, labels)."""
    return {
        f"{prefix}_pull_last_outcome": (
            "The last pull-mode run's outcome (" + ", ".join(OUTCOMES) + "): 1 for it, 0 for the others; "
            "revision is the commit it pulled.",
            ("outcome", "revision"),
        ),
        f"{prefix}_pull_last_timestamp_seconds": ("When the last pull-mode run ended (Unix time).", ()),
        f"{prefix}_pull_last_duration_seconds": ("How long the last pull-mode run took.", ()),
        f"{prefix}_pull_last_success_timestamp_seconds": (
            "When a pull-mode run last ended updated or unchanged (Unix time).",
            (),
        ),
    }


@dataclass(frozen=True)
class PullResult:
    revision: str
    outcome: str
    started: float
    finished: float
    last_success: float | None


def _timestamp(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment.timestamp()


def parse_result(data: Any) -> PullResult:
    """A pull-result.json document; ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    outcome, revision = data.get("outcome"), data.get("revision")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if not isinstance(revision, str):
        raise ValueError(f"revision: expected a string, got {revision!r}")
    success = data.get("last_success")
    if outcome in SUCCESS:
        last_success: float | None = _timestamp(data.get("finished"))
    elif isinstance(success, dict) and success.get("finished"):
        last_success = _timestamp(success["finished"])
    else:
        last_success = None
    started, finished = _timestamp(data.get("started")), _timestamp(data.get("finished"))
    return PullResult(revision, outcome, started, finished, last_success)


def read_result(path: Path) -> tuple[PullResult | None, str | None]:
    """The result in ``path``; or (None, why) when it cannot be read or is not a pull result; (None, None) before
    the first run (and on a node not in pull mode)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: {exc.strerror or exc}"
    try:
        return parse_result(json.loads(text)), None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return None, f"{path}: not a pull result: {exc}"


def add_metrics(metrics: dict[str, GaugeMetricFamily], prefix: str, result: PullResult) -> None:
    """Add ``result``'s samples to the families made from :func:`families` (``metrics``)."""
    for outcome in OUTCOMES:
        value = 1.0 if outcome == result.outcome else 0.0
        metrics[f"{prefix}_pull_last_outcome"].add_metric([outcome, result.revision], value)
    metrics[f"{prefix}_pull_last_timestamp_seconds"].add_metric([], result.finished)
    metrics[f"{prefix}_pull_last_duration_seconds"].add_metric([], max(result.finished - result.started, 0.0))
    if result.last_success is not None:
        metrics[f"{prefix}_pull_last_success_timestamp_seconds"].add_metric([], result.last_success)
