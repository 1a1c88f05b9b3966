"""The claw node's own systemd units: what the system MCP server shows and the claw exporter reports."""

APPLIANCE_UNITS = (
    "openclaw.service",
    "claw-mcp.service",
    "claw-leds.service",
    "claw-leds-watcher.service",
    "threadweaver.service",
    "prometheus.service",
    "prometheus-node-exporter.service",
)
