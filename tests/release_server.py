"""A directory served over HTTP on 127.0.0.1 as a release server (Ollama's archives and sha256sum.txt), recording the
paths asked of it: the release tests' one stand-in for a project's download site."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextlib.contextmanager
def serve(root: Path, requests: list[str]) -> Iterator[str]:
    """Serve ``root`` until the block ends; yields the base URL, appends each GET's path to ``requests``."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
