"""The crush inference node seen from the claw side: the exporter's metrics as a summary
(:mod:`claw.crush.metrics_summary`). The engine client and its errors live in :mod:`claw.engine`."""
