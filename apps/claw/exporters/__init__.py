"""Prometheus exporters for the PicoCluster Claw nodes.

``claw.exporters.crush`` serves the crush node's (Jetson Orin Nano) metrics: GPU load and clock, INA3221 power
rails, thermal zones, memory, nvpmodel power mode and the inference engine's loaded models. The sysfs readers live
in ``claw.exporters.jetson_sysfs`` and the engine API client in ``claw.exporters.engine``.
"""
