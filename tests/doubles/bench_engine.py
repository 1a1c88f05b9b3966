"""The benchmarks' engine: a stdlib HTTP server (no event loop, so its own latency is small and stable) with
just enough of llama.cpp's server and Ollama for what the benchmarks drive: ``/health``, ``/v1/models``,
``/api/version``, ``/api/ps``, and ``POST /v1/chat/completions`` (JSON or SSE, fixed replies). Model "paced"
streams at RATE chunks/s (argv[1], default 1000); any other streams as fast as it can; max_tokens is the number
of chunks. Answer shapes as in :mod:`tests.doubles.engine`, which the tests use.

Run from the repository root: ``python -m tests.doubles.bench_engine [RATE]``; it prints its port, then serves.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1 << 30
RATE = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
# What the engine readers and engine_health ask (llama.cpp's /health and /v1/models, Ollama's /api/version, /api/ps).
ANSWERS = {
    "/health": {"status": "ok"},
    "/v1/models": {"object": "list", "data": [{"id": "gemma3-270m", "object": "model", "owned_by": "bench"}]},
    "/api/version": {"version": "0.12.6"},
    "/api/ps": {
        "models": [
            {"name": "gemma3:270m", "model": "gemma3:270m", "size": GIB, "size_vram": GIB, "context_length": 4096}
        ]
    },
}
REPLY = "Hello! The crush node is up and answering; what would you like to know about it?"
WORDS = REPLY.split()


def completion(model):
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 24, "completion_tokens": len(WORDS), "total_tokens": 24 + len(WORDS)},
    }


def event(model, delta, finish=None, usage=None):
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        data["usage"] = usage
    return ("data: " + json.dumps(data) + "\n\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        answer = ANSWERS.get(self.path.split("?")[0])
        self.send(answer if answer is not None else {"detail": "Not Found"}, 200 if answer is not None else 404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        model = body.get("model") or "bench"
        if body.get("stream"):
            self.stream(model, int(body.get("max_tokens") or 16))
        else:
            self.send(completion(model))

    def send(self, answer, status=200):
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, model, chunks):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        interval = 1 / RATE if model == "paced" else 0.0
        start = time.perf_counter()
        for n in range(chunks):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.chunk(event(model, {"content": (" " if n else "") + WORDS[n % len(WORDS)]}))
        usage = {"prompt_tokens": 24, "completion_tokens": chunks, "total_tokens": 24 + chunks}
        self.chunk(event(model, {}, "stop", usage) + b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is no error here
            super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
