"""PNG plots with matplotlib's Agg backend: pass rate per tier/category per model, latency, tokens/s."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(path: Path, title: str, ylabel: str, groups: list[str], series: dict[str, list[float]]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4))
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        ax.bar([g + index * width for g in range(len(groups))], values, width, label=name)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def results_plots(documents: list[tuple[str, dict[str, Any]]], prefix: Path) -> list[Path]:
    """Pass rate per group and average latency, one series per (file, model)."""
    series: dict[str, dict[str, Any]] = {}
    for name, document in documents:
        for model, summary in document.get("summary", {}).items():
            series[f"{name}: {model}" if name else model] = summary
    groups = sorted({g for s in series.values() for g in s["groups"]}, key=lambda n: (not n.startswith("T"), n))
    rates = {
        label: [
            s["groups"][g]["passes"] / s["groups"][g]["total"] if s["groups"].get(g, {}).get("total") else 0.0
            for g in groups
        ]
        for label, s in series.items()
    }
    latency = {label: [(s["avg_ms"] or 0) / 1000] for label, s in series.items()}
    return [
        _bars(prefix.with_name(prefix.name + "-pass-rate.png"), "Pass rate", "fraction passed", groups, rates),
        _bars(prefix.with_name(prefix.name + "-latency.png"), "Average latency", "seconds", ["all tasks"], latency),
    ]


def throughput_plots(documents: list[tuple[str, dict[str, Any]]], prefix: Path) -> list[Path]:
    series = {}
    for name, document in documents:
        for model, entry in document.get("throughput", {}).items():
            if entry.get("status") == "PASS":
                label = f"{name}: {model}" if name else model
                series[label] = [entry["prompt_tok_s"]["median"] or 0, entry["gen_tok_s"]["median"] or 0]
    return [
        _bars(prefix.with_name(prefix.name + "-tokens.png"), "Throughput", "tokens/s", ["prompt", "generation"], series)
    ]
