"""The report as aligned text for a terminal: one section per source, ✓/✗ per line, the verdict last."""

from __future__ import annotations

import time
from collections.abc import Sequence

from claw.status.report import CRITICAL, Report, exit_code

OK = "✓"
BAD = "✗"
WARN = "!"
# name -> (label, unit, scale for display)
SERIES_LABELS = {
    "power_watts": ("power", "W", 1.0),
    "gpu_load": ("GPU load", "%", 100.0),
    "tokens_per_s": ("tokens/s", "tok/s", 1.0),
    "temperature_c": ("temperature", "°C", 1.0),
}


def table(rows: Sequence[Sequence[str]], indent: str = "  ", marked: bool = True) -> list[str]:
    """Rows of cells as lines with every column but the last padded to its widest cell.

    ``marked``: the first cell is a one-character mark (✓, ✗, !, ·), set off by one space rather than two.
    """
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(len(row) for row in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        text = f"{cells[0]} {'  '.join(cells[1:])}" if marked and len(cells) > 1 else "  ".join(cells)
        lines.append((indent + text).rstrip())
    return lines


def _mark(good: bool) -> str:
    return OK if good else BAD


def _section(title: str, lines: list[str], error: str | None, empty: str) -> list[str]:
    body = [f"  {BAD} {error}"] if error else (lines or [f"  {empty}"])
    return [title, *body, ""]


def _prometheus_section(report: Report, title: str, lines: list[str], section: str, empty: str) -> list[str]:
    """A section read from Prometheus: one short line when Prometheus as a whole is unavailable."""
    error = "unavailable (Prometheus)" if "prometheus" in report.errors else report.errors.get(section)
    return _section(title, lines, error, empty)


def _nodes(report: Report) -> list[str]:
    errors = {t.node: t.error for t in report.targets if t.job == "node" and t.error}
    rows = [
        [_mark(n.up), n.name, n.role, "up" if n.up else "down", errors.get(n.name, "") if not n.up else ""]
        for n in report.nodes
    ]
    exporters = [t for t in report.targets if t.job != "node" and t.health == "down"]
    rows += [[BAD, t.node, f"{t.job} target", "down", t.error] for t in exporters]
    return _prometheus_section(report, "Nodes", table(rows), "nodes", "no node targets")


def _services(report: Report) -> list[str]:
    rows = [[_mark(s.active), s.node, s.unit, s.state] for s in report.services]
    return _prometheus_section(report, "Services", table(rows), "services", "no unit states reported")


def _versions(report: Report) -> list[str]:
    rows = [[v.node or "-", v.component, v.version] for v in report.versions]
    lines = table(rows, marked=False)
    if report.bom is not None and lines:
        # This node's versions come from its bill of materials; the other nodes' from Prometheus.
        error = "unavailable (Prometheus)" if "prometheus" in report.errors else report.errors.get("versions")
        return ["Versions", *lines, *([f"  {WARN} other nodes {error}"] if error else []), ""]
    return _prometheus_section(report, "Versions", lines, "versions", "no version information")


def _models(report: Report) -> list[str]:
    rows = [[_mark(True) if m.loaded else "·", m.name, "loaded" if m.loaded else "served"] for m in report.models]
    lines = table(rows)
    if "engine" in report.errors:
        lines.append(f"  engine {report.errors['engine']} (loaded models from Prometheus shown)")
    if report.engine_url is not None and "engine" not in report.errors:
        return _section("Models", lines, None, "no models")  # the engine answered; Prometheus was not needed
    return _prometheus_section(report, "Models", lines, "models", "no models")


def _alerts(report: Report) -> list[str]:
    rows = [[BAD if a.severity == CRITICAL else WARN, a.severity, a.name, a.summary] for a in report.alerts]
    return _prometheus_section(report, "Alerts", table(rows), "alerts", f"{OK} none firing")


def _leds(report: Report) -> list[str]:
    lines = [] if report.leds is None else [f"  {report.leds.state}: {report.leds.detail}"]
    return _section("LEDs", lines, report.errors.get("leds"), "not asked")


def _last_update(report: Report) -> list[str]:
    update = report.last_update
    lines = [] if update is None else table([[update.time, update.playbook, update.version]], marked=False)
    return _section("Last update", lines, report.errors.get("last_update"), "never recorded")


def _series(report: Report) -> list[str]:
    rows = []
    for name, points in report.series.items():
        label, unit, scale = SERIES_LABELS.get(name, (name, "", 1.0))
        error = report.errors.get(f"series.{name}")
        if error:
            rows.append([BAD, label, error])
        elif not points:
            rows.append(["·", label, "no data"])
        else:
            values = [value * scale for _, value in points]
            rows.append([" ", label, f"{values[-1]:.1f} {unit}", f"(min {min(values):.1f}, max {max(values):.1f})"])
    return _prometheus_section(report, "Last hour", table(rows), "prometheus", "not asked")


def render_text(report: Report) -> str:
    """The whole report for a person; the last line gives the verdict and the exit status."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(report.generated_at))
    source = f"Prometheus {report.prometheus_url}" if report.prometheus_url else "no Prometheus"
    lines = [f"PicoCluster Claw status ({source}, {stamp})", ""]
    if "prometheus" in report.errors:
        lines += [f"{BAD} Prometheus {report.errors['prometheus']}", ""]
    for part in (_nodes, _services, _versions, _models, _alerts, _leds, _last_update, _series):
        lines += part(report)
    problems = report.problems()
    verdict = f"{OK} healthy" if not problems else f"{BAD} " + "; ".join(problems)
    lines.append(f"{verdict} (exit {exit_code(report)})")
    return "\n".join(lines)
