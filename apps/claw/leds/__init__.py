"""The Blinkt! LED strip: a daemon that owns it, a client, a status watcher and the ``claw leds`` commands.

Layout: :mod:`~claw.leds.state` (the pure model), :mod:`~claw.leds.protocol` (the socket's JSON lines),
:mod:`~claw.leds.backends` (blinkt or simulated), :mod:`~claw.leds.daemon`, :mod:`~claw.leds.client`,
:mod:`~claw.leds.watcher` and :mod:`~claw.leds.cli`. The MCP server lives in :mod:`claw.mcp.leds`.
"""
