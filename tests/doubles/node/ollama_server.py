#!/usr/bin/python3
"""Test double of Ollama's server binary (bin/ollama of a release archive; installed under that name).

`ollama serve` answers GET / and GET /api/version on OLLAMA_HOST as the real server does (and GET
/double/environ with its OLLAMA_* and JETSON_* environment, for the tests), and creates
OLLAMA_MODELS/blobs as the real server does at start. The model API keeps the real shapes: /api/tags,
/api/ps, POST /api/pull (stream false), DELETE /api/delete and POST /api/generate (a load with
keep_alive); pulled models are recorded in OLLAMA_MODELS/double-models.json and every pull is
logged to OLLAMA_MODELS/double-pulls.log, so tests can see that a present model is not pulled again;
`ollama --version` prints the version. The version comes from lib/ollama/fixture-version beside it,
so the double only works when the whole release tree was unpacked.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = (Path(__file__).resolve().parents[1] / "lib" / "ollama" / "fixture-version").read_text().strip()


MODELS = Path(os.environ.get("OLLAMA_MODELS", Path.home() / ".ollama" / "models"))
LOADED: set[str] = set()


def pulled() -> list[str]:
    state = MODELS / "double-models.json"
    return json.loads(state.read_text()) if state.exists() else []


def save(models: list[str]) -> None:
    (MODELS / "double-models.json").write_text(json.dumps(sorted(set(models))))


def model_entry(name: str) -> dict:
    return {"name": name, "model": name, "size": 291554930, "digest": "0" * 64, "details": {"format": "gguf"}}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        model = body.get("model", "")
        if self.path == "/api/pull":
            with (MODELS / "double-pulls.log").open("a") as log:
                log.write(model + "\n")
            save([*pulled(), model])
            self._json(200, {"status": "success"})
        elif self.path == "/api/generate":
            if model not in pulled():
                self._json(404, {"error": f"model '{model}' not found"})
                return
            LOADED.add(model)
            self._json(200, {"model": model, "response": "", "done": True, "done_reason": "load"})
        else:
            self._json(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if body.get("model") not in pulled():
            self._json(404, {"error": f"model '{body.get('model')}' not found"})
            return
        save([name for name in pulled() if name != body["model"]])
        LOADED.discard(body["model"])
        self._json(200, {})

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(payload).encode())

    def do_GET(self) -> None:
        if self.path == "/api/tags":
            self._json(200, {"models": [model_entry(name) for name in pulled()]})
        elif self.path == "/api/ps":
            self._json(200, {"models": [model_entry(name) for name in sorted(LOADED)]})
        elif self.path == "/":
            self._send(200, "text/plain; charset=utf-8", b"Ollama is running")
        elif self.path == "/api/version":
            self._send(200, "application/json; charset=utf-8", json.dumps({"version": VERSION}).encode())
        elif self.path == "/double/environ":
            # Test double only: the server's own environment, which root in a container cannot read
            # from /proc/<pid>/environ of another user's process.
            environ = {k: v for k, v in os.environ.items() if k.startswith(("OLLAMA_", "JETSON_"))}
            self._send(200, "application/json; charset=utf-8", json.dumps(environ).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"404 page not found")

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"[GIN] {self.command} {self.path}\n")


def serve() -> None:
    address, _, port = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").rpartition(":")
    models = Path(os.environ.get("OLLAMA_MODELS", Path.home() / ".ollama" / "models"))
    (models / "blobs").mkdir(parents=True, exist_ok=True)
    print(f"Listening on {address}:{port} (version {VERSION})", file=sys.stderr, flush=True)
    ThreadingHTTPServer((address.strip("[]") or "127.0.0.1", int(port)), Handler).serve_forever()


def main() -> int:
    args = sys.argv[1:]
    if args in (["--version"], ["-v"], ["version"]):
        print(f"ollama version is {VERSION}")
        return 0
    if args == ["serve"]:
        serve()
        return 0
    print(f"ollama double: unsupported arguments {args}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
