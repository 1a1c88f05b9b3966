"""Precise failures of the crush inference engine, each with a stable ``code`` and a one-line message for a person
or a model: what went wrong, where, and what to do about it. The one error hierarchy of :mod:`claw.engine`.

:func:`from_exception` and :func:`from_response` are the one place where transport exceptions, HTTP statuses and
engine error bodies (Ollama's ``{"error": "..."}``, OpenAI-style ``{"error": {"message": ...}}``) become these.
"""

from __future__ import annotations

import errno
import json
import re
import socket
from collections.abc import Iterable
from typing import Any, ClassVar

import httpx

ENGINE = "inference engine"
MODELS_PLAYBOOK = "add it to crush_models and run playbooks/models.yml"
_MAX_DETAIL = 300

# Memory exhaustion as Ollama ("model requires more system memory (5.6 GiB) than is available (3.2 GiB)") and
# llama.cpp ("allocating 2304.00 MiB on device 0: cudaMalloc failed: out of memory") word it.
_OOM = re.compile(
    r"requires more (?:system )?memory|out of memory|failed to allocate|unable to allocate|cudaMalloc failed"
    r"|insufficient memory|not enough memory",
    re.IGNORECASE,
)
_OLLAMA_OOM_AMOUNTS = re.compile(r"memory \(([^)]+)\) than is available \(([^)]+)\)", re.IGNORECASE)
_ALLOCATING = re.compile(r"allocat\w* ([\d.]+ ?[KMGT]i?B)", re.IGNORECASE)
_MISSING = re.compile(r"not found|does not exist|no such model|model_not_found", re.IGNORECASE)
REFUSED = "connection refused"
_ERRNO_REASONS = {
    errno.ECONNREFUSED: REFUSED,
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTDOWN: "host is down",
}
_REGISTRY = re.compile(r"registry\.ollama\.ai|dial tcp|no such host|TLS handshake", re.IGNORECASE)


def one_line(text: str, limit: int = _MAX_DETAIL) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class CodedError(Exception):
    """A failure with a stable ``code`` and a one-line message: ``str(err)``, also ``err.message``. The base of
    :class:`CrushError` here and of ThreadWeaver's ``ProviderError``."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, limit=600))

    @property
    def message(self) -> str:
        return str(self)


class CrushError(CodedError):
    """Base of every crush failure; ``str(err)`` is the one-line message, ``err.code`` its stable identifier."""

    code = "crush_error"


class CrushUnreachable(CrushError):
    code = "crush_unreachable"

    def __init__(self, address: str, reason: str, service: str = ENGINE) -> None:
        self.address = address
        super().__init__(
            f"cannot reach the crush {service} at {address} ({reason}); "
            "check that the crush node is powered on and connected to the LAN"
        )


class EngineTimeout(CrushError):
    code = "engine_timeout"

    def __init__(self, address: str, action: str, seconds: float | None, service: str = ENGINE) -> None:
        self.address = address
        within = f" within {seconds:g} s" if seconds else ""
        busy = "it may be busy loading a model or overloaded" if service == ENGINE else "it may be overloaded"
        super().__init__(f"the crush {service} at {address} did not answer {action}{within}; {busy}, try again shortly")


class EngineDown(CrushError):
    code = "engine_down"

    def __init__(self, address: str, detail: str, service: str = ENGINE, *, refused: bool = False) -> None:
        self.address = address
        self.detail = detail
        self.refused = refused
        unit = "engine service (ollama or llamacpp)" if service == ENGINE else service
        if refused:
            # The node's kernel answered the SYN with a reset: crush is up, nothing listens on the port.
            message = (
                f"nothing listens on {address} ({one_line(detail)}): the crush {unit} is stopped or still "
                f"starting; check it on the crush node"
            )
        else:
            message = (
                f"the crush node at {address} answers but its {service} is not working ({one_line(detail)}); "
                f"check the {unit} on the crush node"
            )
        super().__init__(message)


class ModelUnavailable(CrushError):
    """The model could not be loaded; :class:`ModelMissing` and :class:`OutOfMemory` say why precisely."""

    code = "model_unavailable"

    def __init__(self, model: str | None, detail: str) -> None:
        self.model = model
        super().__init__(f"model '{model}' could not be loaded: {detail}" if model else detail)


class ModelMissing(ModelUnavailable):
    code = "model_missing"

    def __init__(
        self, model: str, available: Iterable[str] | None = None, *, can_pull: bool = True, remote: bool = False
    ) -> None:
        self.model = model
        self.available = tuple(available or ())
        if remote:
            # A pull asked the Ollama library for a name it does not have.
            message = f"model '{model}' does not exist in the Ollama library; check its name and tag"
        else:
            listed = ", ".join(self.available) if self.available else "none"
            fix = f"{MODELS_PLAYBOOK}, or pull it with pull_model" if can_pull else MODELS_PLAYBOOK
            message = f"model '{model}' is not on the crush node (available: {listed}); {fix}"
        self.can_pull = can_pull
        self.remote = remote
        CrushError.__init__(self, message)

    def with_available(self, available: Iterable[str]) -> ModelMissing:
        return ModelMissing(self.model, available, can_pull=self.can_pull, remote=self.remote)


class OutOfMemory(ModelUnavailable):
    code = "out_of_memory"

    def __init__(
        self, model: str | None, needed: str | None = None, available: str | None = None, detail: str = ""
    ) -> None:
        self.model = model
        self.needed = needed
        self.available = available
        what = f"model '{model}'" if model else "the model"
        if needed and available:
            amounts = f": it needs {needed}, {available} is available"
        elif needed:
            amounts = f": it needed {needed} more"
        else:
            amounts = f" ({one_line(detail)})" if detail else ""
        CrushError.__init__(
            self,
            f"{what} does not fit in the crush node's memory{amounts}; "
            "unload other models (unload_model) or use a smaller model or quantisation",
        )


class UnsupportedOperation(CrushError):
    code = "unsupported_operation"

    def __init__(self, operation: str, engine: str) -> None:
        self.operation = operation
        self.engine = engine
        if engine == "llamacpp":
            why = f"the llama.cpp engine serves the models Ansible configured; {MODELS_PLAYBOOK}"
        else:
            why = f"the {engine} engine does not offer it"
        super().__init__(f"{operation} is not supported: {why}")


class EngineError(CrushError):
    code = "engine_error"

    def __init__(self, detail: str, status: int | None = None, hint: str = "") -> None:
        self.detail = detail
        self.status = status
        prefix = f"the inference engine reported an error (HTTP {status})" if status else "the inference engine failed"
        super().__init__(f"{prefix}: {one_line(detail)}" + (f"; {hint}" if hint else ""))


def address_of(url: str | httpx.URL) -> str:
    """``host:port`` of a URL, with the scheme's default port filled in."""
    parsed = httpx.URL(str(url))
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.host}:{port}"


def connect_reason(exc: BaseException) -> str:
    """The cause of a failed connect in words, from the OS error under httpx's (anyio says only "All connection
    attempts failed")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return REFUSED
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    return one_line(str(exc) or type(exc).__name__, 120)


def from_exception(
    exc: httpx.HTTPError, address: str, action: str, timeout: float | None, service: str = ENGINE
) -> CrushError:
    """A transport failure of ``action`` (e.g. ``GET /api/tags``) against ``address``."""
    if isinstance(exc, httpx.ConnectTimeout):
        # No answer to the TCP handshake: the host is off or off the network, not a slow engine.
        return CrushUnreachable(address, f"no answer to connect within {timeout:g} s" if timeout else "", service)
    if isinstance(exc, httpx.TimeoutException):
        return EngineTimeout(address, action, timeout, service)
    if isinstance(exc, httpx.ConnectError):
        reason = connect_reason(exc)
        if reason == REFUSED:
            # nftables on crush admits claw to the port and the kernel resets the connection: the node is on the
            # LAN and answering, the service is not listening.
            return EngineDown(address, reason, service, refused=True)
        return CrushUnreachable(address, reason, service)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return EngineDown(address, f"{action}: the connection closed without a complete answer", service)
    return EngineError(f"{action}: {type(exc).__name__}: {exc}")


def json_object(body: bytes | str | Any) -> dict[str, Any] | None:
    """An error body as a JSON object: parsed from bytes or text, or as given; None when it is not one."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return body if isinstance(body, dict) else None


def engine_message(body: bytes | str | Any) -> str | None:
    """The error text in an engine's JSON error body, or None when the body is not one."""
    parsed = json_object(body)
    if parsed is None:
        return None
    error = parsed.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error.get("code")
    if error is None:
        error = parsed.get("detail")  # FastAPI's own errors
    return str(error) if isinstance(error, (str, int)) and str(error) else None


def _error_code(body: bytes | str | Any) -> str | None:
    parsed = json_object(body)
    error = parsed.get("error") if parsed is not None else None
    return error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), str) else None


def from_message(message: str, *, model: str | None, engine: str, status: int | None = None) -> CrushError | None:
    """Classify an engine's own error text (also used for errors inside a 200 NDJSON stream); None if unspecific."""
    if _OOM.search(message):
        amounts = _OLLAMA_OOM_AMOUNTS.search(message)
        if amounts:
            return OutOfMemory(model, amounts.group(1), amounts.group(2))
        allocating = _ALLOCATING.search(message)
        return OutOfMemory(model, allocating.group(1) if allocating else None, detail=message)
    if model and _MISSING.search(message) and "manifest" in message.lower():
        return ModelMissing(model, remote=True)
    if _REGISTRY.search(message):
        return EngineError(message, status, hint="the crush node needs internet access to pull models")
    if model and _MISSING.search(message):
        return ModelMissing(model, can_pull=engine == "ollama")
    return None


def from_response(
    status: int,
    body: bytes,
    *,
    address: str,
    action: str,
    engine: str,
    model: str | None = None,
    service: str = ENGINE,
) -> CrushError:
    """An error answer (HTTP 4xx/5xx) to ``action``; ``model`` is the model the request named, if any."""
    message = engine_message(body)
    if message is not None:
        known = from_message(message, model=model, engine=engine, status=status)
        if known is not None:
            return known
        if _error_code(body) == "model_not_found" and model:
            return ModelMissing(model, can_pull=engine == "ollama")
    if status in (502, 503, 504) or (status >= 500 and message is None):
        # A proxy or a crashed/starting engine: the node is up, the engine is not serving.
        detail = f"HTTP {status} for {action}" + (f": {message}" if message else "")
        return EngineDown(address, detail, service)
    if status == 404 and model is None:
        return EngineDown(address, f"HTTP 404 for {action}; is this the right service and port?", service)
    return EngineError(message or f"{action}: {one_line(body.decode(errors='replace'), 120) or 'empty body'}", status)
