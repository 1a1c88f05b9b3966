"""One TLS context for every HTTP client of the claw apps.

httpx loads the CA bundle for each client it creates (~35 ms); clients made per request (a scrape, a tool call)
pass this shared context instead.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_context() -> ssl.SSLContext:
    return ssl.create_default_context()
