"""The claw node's units as the roles render them (``appliance_claw_units``, playbooks/group_vars/all.yml): those the
rendered /etc/claw/mcp.yml lets the system MCP server show and /etc/claw/claw-exporter.yml has the exporter report."""

from __future__ import annotations

CLAW_UNITS = (
    "threadweaver.service",
    "openclaw.service",
    "claw-mcp.service",
    "claw-leds.service",
    "claw-leds-watcher.service",
    "prometheus.service",
    "claw-exporter.service",
    "prometheus-node-exporter.service",
)
