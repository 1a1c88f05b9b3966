"""Upstream's published SMEEP ladder, imported as data so the notebook can set it beside ours (never measured here).

The figures are upstream's, as this repository's issue #22 quotes them; `publish` writes them to
results/upstream-ladder.json and labels every row it draws from them as upstream's, with this source.
"""

from __future__ import annotations

from typing import Any

LABEL = "upstream (published, not measured here)"

LADDER: dict[str, Any] = {
    "schema": "smeep-upstream/1",
    "label": LABEL,
    "source": (
        "Upstream PicoCluster Claw's published SMEEP T1-T4 tool-call ladder, as quoted in this repository's issue #22 "
        "(\"Upstream's own published table\"); upstream's page points to its raw data and scripts at "
        "https://github.com/picocluster/PicoCluster-Claw (scripts/bench-openclaw.py)."
    ),
    "caveat": (
        "Imported as published: totals only (no per-tier breakdown, repeats, seeds or engine settings were given), "
        "not re-measured here. Upstream's product page summarises the same ladder as '5 models, 10 tasks each. "
        "Granite 10/10. Nemotron 9/10', which differs from the table's nemotron-3-nano:4b 6/10 and counts a fifth "
        "model the table does not name; the table's figures are used as issue #22 quotes them."
    ),
    "suite": "ladder",
    "driver": "openclaw",
    "harness": "OpenClaw 2026.5.12 via LiteLLM",
    "hardware": "NVIDIA Jetson Orin Nano Super (8 GB unified memory)",
    "rows": [
        {"model": "granite4.1:8b", "passes": 10, "total": 10},
        {"model": "qwen3.5:4b", "passes": 8, "total": 10},
        {"model": "nemotron-3-nano:4b", "passes": 6, "total": 10},
        {"model": "llama3.2:3b", "passes": 5, "total": 10},
    ],
}
