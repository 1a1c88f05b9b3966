"""``claw status``: one report of the whole cluster from Prometheus, the inference engine and the LED daemon.

See ``status.md`` beside this package for the JSON shape and the exit codes.
"""

from claw.status.report import (
    Alert,
    LastUpdate,
    Leds,
    Model,
    Node,
    Report,
    Service,
    Sources,
    Target,
    Version,
    bom_versions,
    collect_report,
    collect_report_sync,
    exit_code,
    read_bom,
    status_json,
)

__all__ = [
    "Alert",
    "LastUpdate",
    "Leds",
    "Model",
    "Node",
    "Report",
    "Service",
    "Sources",
    "Target",
    "Version",
    "bom_versions",
    "collect_report",
    "collect_report_sync",
    "exit_code",
    "read_bom",
    "status_json",
]
