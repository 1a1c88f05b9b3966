"""A small fixture web site the harness serves on loopback, so web-fetch tasks have known, checkable answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGES: dict[str, tuple[str, str]] = {
    "/": ("text/html", "<html><head><title>Lattice Orchard Co-op</title></head><body><h1>Welcome</h1>"
          "<p>Fresh fruit from the valley. See <a href='/products/kettle'>our kettle</a>.</p></body></html>"),
    "/products/kettle": ("text/html", "<html><head><title>Copper kettle</title></head><body><h1>Copper kettle</h1>"
                         "<p class='price'>Price: EUR 47.30</p><p>In stock: 12</p></body></html>"),
    "/api/status.json": ("application/json", json.dumps({"service": "orchard-api", "build": 8812, "healthy": True})),
    "/start": ("text/html", "<html><body><p>The secret word is not here. Follow <a href='/next/b7'>this link</a> "
               "to /next/b7 to find it.</p></body></html>"),
    "/next/b7": ("text/html", "<html><body><p>The secret word is marmalade-44.</p></body></html>"),
    "/events": ("text/html", "<html><body><h1>Upcoming</h1><ul><li>2030-06-01 18:00 UTC: Orchard board meeting</li>"
                "</ul></body></html>"),
}  # fmt: skip


class FixtureSite:
    """Serves PAGES on 127.0.0.1 in a background thread and records every path requested."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                kind, body = PAGES.get(self.path, ("text/plain", ""))
                self.send_response(200 if self.path in PAGES else 404)
                self.send_header("Content-Type", kind)
                data = (body or "not found").encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FixtureSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
