"""Markdown tables ready to publish: pass counts per tier or category, latency and throughput."""

from __future__ import annotations

from typing import Any


def _groups(document: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for summary in document.get("summary", {}).values():
        for name in summary["groups"]:
            if name not in names:
                names.append(name)
    return sorted(names, key=lambda n: (not n.startswith("T"), n))


def results_table(document: dict[str, Any], label: str = "") -> str:
    groups = _groups(document)
    header = ["model", *groups, "total", "avg latency"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, summary in document.get("summary", {}).items():
        cells = [f"{label}{model}"]
        for group in groups:
            g = summary["groups"].get(group)
            cells.append(f"{g['passes']}/{g['total']}" if g else "-")
        cells.append(f"{summary['passes']}/{summary['eligible']}")
        cells.append(f"{summary['avg_ms']:,} ms" if summary["avg_ms"] is not None else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def reliability_table(document: dict[str, Any]) -> str:
    """pass@1 and pass^k (tau-bench) per model, with the spread of pass@1 between repeats; empty for one trial."""
    summaries = {m: s for m, s in document.get("summary", {}).items() if len(s.get("pass_hat_k") or {}) > 1}
    if not summaries:
        return ""
    ks = sorted({int(k) for s in summaries.values() for k in s["pass_hat_k"]})
    header = ["model", "pass@1", *(f"pass^{k}" for k in ks[1:]), "pass@1 per repeat: min-max (sd)"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, summary in summaries.items():
        hat, spread = summary["pass_hat_k"], summary["spread"]
        cells = [model, f"{summary['pass_at_1']:.3f}", *(_f(hat.get(str(k)), 3) for k in ks[1:])]
        cells.append(f"{spread['min']:.3f}-{spread['max']:.3f} ({spread['stdev']:.3f})")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def results_markdown(document: dict[str, Any]) -> str:
    hw = document.get("hardware", {})
    lines = [
        f"## SMEEP results ({document.get('timestamp', '?')})",
        "",
        f"Engine {document.get('engine', {}).get('kind', '?')} {document.get('engine', {}).get('version') or ''} at "
        f"{document.get('engine', {}).get('url', '?')}; driver {document.get('driver', '?')}; "
        f"{document.get('trials', 1)} trial(s), temperature {document.get('temperature', '?')}, seed "
        f"{document.get('seed', '?')}; {hw.get('cpu_model')}, {hw.get('cpu_cores')} cores, "
        f"{hw.get('ram_mib')} MiB RAM; smeep {document.get('smeep_version')}.",
        "",
        results_table(document),
        "",
        *([reliability_table(document), ""] if reliability_table(document) else []),
        "| model | failed |",
        "|---|---|",
    ]
    for model, summary in document.get("summary", {}).items():
        lines.append(f"| {model} | {', '.join(summary['failed']) or '-'} |")
    lines += ["", f"Command: `{document.get('command', '')}`", ""]
    return "\n".join(lines)


def throughput_markdown(document: dict[str, Any]) -> str:
    lines = [
        f"## SMEEP throughput ({document.get('timestamp', '?')})",
        "",
        "| model | quant | load s | TTFT ms | prompt tok/s | gen tok/s | memory MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, entry in document.get("throughput", {}).items():
        if entry.get("status") != "PASS":
            lines.append(f"| {model} | - | - | - | - | - | {entry.get('status')}: {entry.get('error')} |")
            continue
        lines.append(
            f"| {model} | {entry.get('quantization') or '-'} | {_f(entry.get('load_s'), 2)} | "
            f"{_f(entry['ttft_ms']['median'], 1)} | {_f(entry['prompt_tok_s']['median'], 1)} | "
            f"{_f(entry['gen_tok_s']['median'], 1)} (min {_f(entry['gen_tok_s']['min'], 1)}) | "
            f"{_f(entry.get('memory_mib'), 0)} |"
        )
    lines += ["", f"Command: `{document.get('command', '')}`", ""]
    return "\n".join(lines)


def compare_markdown(documents: list[tuple[str, dict[str, Any]]]) -> str:
    lines = ["## SMEEP comparison", ""]
    results = [(name, d) for name, d in documents if "summary" in d]
    if results:
        merged = {"summary": {f"{name}: {m}": s for name, d in results for m, s in d["summary"].items()}}
        lines += [results_table(merged), ""]
    speeds = [(name, d) for name, d in documents if "throughput" in d]
    if speeds:
        merged_speed = {"throughput": {f"{name}: {m}": e for name, d in speeds for m, e in d["throughput"].items()}}
        lines += [*throughput_markdown(merged_speed).splitlines()[2:-2], ""]
    return "\n".join(lines)


def _f(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
