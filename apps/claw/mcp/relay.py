"""Relay a stdio MCP client to the appliance's running server over loopback streamable HTTP.

``claw mcp NAME --stdio`` on an appliance whose MCP service already serves NAME relays instead of starting a
second server: the client talks to the same instance OpenClaw and ThreadWeaver use (same reminders, same
sandbox, same LED daemon), and the start costs an interpreter and this module, not the MCP SDK (whose import
alone takes about a second on a Pi-class core).

Only the standard library is used here, for that reason. The relay reads newline-delimited JSON-RPC from stdin,
POSTs each message to the server, and writes every message of each answer (a JSON body or a server-sent event
stream) to stdout as one line. Requests run concurrently, so a long tool call does not hold up a ping or a
cancellation. The claw servers send nothing outside a request's own stream, so the relay opens no standalone
GET stream. A failure of the service is answered as a JSON-RPC error to the request it broke, never silence.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

MCP_PATH = "/mcp"
# JSON-RPC's "internal error": the request reached the relay but no answer came back from the service.
RELAY_ERROR = -32603
PARSE_ERROR = -32700
CONNECT_TIMEOUT_S = 0.5
# A tool call may legitimately run for minutes (a model pull), so reads only time out when the service hangs.
READ_TIMEOUT_S = 900.0
# What a kept-alive connection raises when the service closed it meanwhile (it restarted, or idled it out)
# before reading the request: sent again on a new connection, once.
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)


def service_listening(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether something accepts connections on the server's loopback port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def sse_messages(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The data of each server-sent event, in order (events without data, such as priming events, are skipped)."""
    data: list[bytes] = []
    for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if b"".join(data).strip():
                yield b"\n".join(data)
            data = []
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if b"".join(data).strip():
        yield b"\n".join(data)


class StdioRelay:
    """One stdio session relayed to ``http://host:port/mcp``."""

    def __init__(self, host: str, port: int, output: BinaryIO, path: str = MCP_PATH, key: str | None = None) -> None:
        self.host = host
        self._key = key
        self.port = port
        self.path = path
        self._output = output
        self._write_lock = threading.Lock()
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()
        self._session_id: str | None = None
        self._protocol_version: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def run(self, stdin: BinaryIO) -> int:
        """Relay until the client closes stdin, then end the HTTP session."""
        workers: list[threading.Thread] = []
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError as err:
                self._write_error(None, PARSE_ERROR, f"not JSON: {err}")
                continue
            if isinstance(message, dict) and message.get("method") == "initialize":
                self._forward(line, message)  # later messages need the session it opens
                continue
            worker = threading.Thread(target=self._forward, args=(line, message), daemon=True)
            worker.start()
            workers.append(worker)
            workers = [w for w in workers if w.is_alive()]
        for worker in workers:
            worker.join()
        self._end_session()
        return 0

    # -- one message ---------------------------------------------------------------------------------------

    def _forward(self, body: bytes, message: Any) -> None:
        request_id = message.get("id") if isinstance(message, dict) else None
        for fresh in (False, True):
            connection, reused = self._connection(fresh)
            try:
                connection.request("POST", self.path, body=body, headers=self._headers())
                response = connection.getresponse()
            except _STALE as err:
                connection.close()
                if reused:
                    continue  # nothing reached the service: send it again on a new connection
                self._write_failure(request_id, err)
                return
            except (OSError, http.client.HTTPException) as err:
                connection.close()
                self._write_failure(request_id, err)
                return
            try:
                self._relay_answer(response, message, request_id)
            except (OSError, http.client.HTTPException, ValueError) as err:
                connection.close()
                self._write_failure(request_id, err)
                return
            self._idle.put(connection)
            return

    def _write_failure(self, request_id: Any, err: Exception) -> None:
        self._write_error(request_id, RELAY_ERROR, f"the claw MCP service at {self.url} failed: {err}")

    def _relay_answer(self, response: http.client.HTTPResponse, message: Any, request_id: Any) -> None:
        kind = response.getheader("Content-Type", "").split(";")[0].strip()
        if response.status >= 400:
            self._write_http_error(response, request_id)
            return
        if isinstance(message, dict) and message.get("method") == "initialize":
            self._session_id = response.getheader("Mcp-Session-Id")
        if kind == "text/event-stream":
            for data in sse_messages(iter(response.readline, b"")):
                self._write_message(data)
        else:
            body = response.read()
            if body.strip():
                self._write_message(body)

    def _write_http_error(self, response: http.client.HTTPResponse, request_id: Any) -> None:
        body = response.read()
        detail = f"HTTP {response.status}"
        try:
            answer = json.loads(body)
            detail = f"{detail}: {answer['error']['message']}"
        except (ValueError, KeyError, TypeError):
            if body.strip():
                detail = f"{detail}: {body.decode('utf-8', 'replace').strip()[:200]}"
        if response.status == 401:
            detail += " (the relay's client key is missing or unknown: check --key-file or CLAW_MCP_KEY_FILE)"
        if response.status == 404 and self._session_id:
            detail += " (the session is gone: the claw MCP service restarted; reconnect the client)"
        if request_id is not None:
            self._write_error(request_id, RELAY_ERROR, f"the claw MCP service at {self.url} refused it: {detail}")

    def _write_message(self, data: bytes) -> None:
        message = json.loads(data)
        result = message.get("result") if isinstance(message, dict) else None
        if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
            self._protocol_version = result["protocolVersion"]
        self._write_line(json.dumps(message, separators=(",", ":")).encode())

    def _write_error(self, request_id: Any, code: int, text: str) -> None:
        error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}}
        self._write_line(json.dumps(error, separators=(",", ":")).encode())

    def _write_line(self, data: bytes) -> None:
        with self._write_lock:
            self._output.write(data + b"\n")
            self._output.flush()

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        if self._session_id:
            headers["Mcp-Session-Id"] = self._session_id
        if self._protocol_version:
            headers["MCP-Protocol-Version"] = self._protocol_version
        return headers

    def _connection(self, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection (reused=True) unless ``fresh`` or none is idle."""
        if not fresh:
            try:
                return self._idle.get_nowait(), True
            except queue.Empty:
                pass
        return http.client.HTTPConnection(self.host, self.port, timeout=READ_TIMEOUT_S), False

    def _end_session(self) -> None:
        if not self._session_id:
            return
        connection, _ = self._connection(fresh=True)
        try:
            connection.request("DELETE", self.path, headers=self._headers())
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass  # the service is gone already; nothing is left to end
        finally:
            connection.close()
        while not self._idle.empty():
            self._idle.get_nowait().close()


def relay_stdio(host: str, port: int, key: str | None = None) -> int:
    return StdioRelay(host, port, sys.stdout.buffer, key=key).run(sys.stdin.buffer)
