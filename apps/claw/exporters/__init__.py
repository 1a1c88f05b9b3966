"""Prometheus exporters for the PicoCluster Claw nodes.

``claw.exporters.crush`` serves the crush node's (Jetson Orin Nano) metrics: GPU load and clock, INA3221 power
rails, thermal zones, memory, nvpmodel power mode and the inference engine's loaded models (sysfs readers in
``jetson_sysfs``, the engine API client in ``engine``). ``claw.exporters.claw`` serves the claw node's: Pi 5
temperature, throttling, fan and NVMe (``pi_sysfs``), OpenClaw and LED health, the appliance's units, power and
electricity cost. Both run through ``serving``.
"""
