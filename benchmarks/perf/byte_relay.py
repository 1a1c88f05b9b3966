#!/usr/bin/env python3
"""The floor of any proxy hop on this machine: a TCP relay that copies bytes both ways and does nothing else.

No HTTP parsing, no JSON, no hooks, no billing; uvloop, as ThreadWeaver runs. benchmarks/perf/threadweaver.py puts
it in front of the fake engine as one more path, so the same loop measures what a hop costs before any work is
done: its added latency, TTFT and CPU per streamed chunk (user and kernel time: one read and one write per chunk,
and the wakeups they cause) bound from below what ThreadWeaver, LiteLLM or any proxy can reach here.

    python byte_relay.py UPSTREAM_PORT   # prints the port it listens on (loopback), then relays until killed
"""

from __future__ import annotations

import asyncio
import socket
import sys

import uvloop


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
    finally:
        writer.close()


async def _serve(upstream: int) -> None:
    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(_copy(client_reader, up_writer), _copy(up_reader, client_writer), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", 0, family=socket.AF_INET)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(_serve(int(sys.argv[1])))
