"""Precise provider failures, in the style of :mod:`claw.engine.errors`: a stable ``code``, one line for a person.

:func:`from_exception` maps transport failures; :func:`from_response` maps an HTTP error answer, with the
provider's own message (OpenAI/Mistral/Groq ``{"error": {"message"}}``, Anthropic
``{"type": "error", "error": {"type", "message"}}``, Mistral's ``{"message": ...}`` and ``{"detail": ...}``).
"""

from __future__ import annotations

from typing import Any

import httpx

from claw.engine.errors import CodedError, address_of, connect_reason, json_object, one_line


class ProviderError(CodedError):
    code = "provider_error"
    status: int | None = None

    def __init__(self, provider: str, message: str) -> None:
        self.provider = provider
        super().__init__(message)


class ProviderUnreachable(ProviderError):
    """No connection (refused, no route, DNS, connect timeout): the fallback provider may be used."""

    code = "provider_unreachable"

    def __init__(self, provider: str, address: str, reason: str) -> None:
        self.address = address
        super().__init__(provider, f"cannot reach {provider} at {address} ({reason}); check the network and base_url")


class ProviderDown(ProviderError):
    """Reached, but not serving (5xx, overloaded, cut-off answer, read timeout): the fallback may be used."""

    code = "provider_down"

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, f"{provider} is not answering properly ({detail}); try again shortly")


class ProviderAuthError(ProviderError):
    code = "provider_auth"

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, f"{provider} refused the API key ({detail}); check the provider's api_key_file")


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"

    def __init__(self, provider: str, detail: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        wait = f"; retry after {retry_after:g} s" if retry_after else "; wait and try again"
        super().__init__(provider, f"{provider} rate-limited the request ({detail}){wait}")


class ProviderBadRequest(ProviderError):
    code = "provider_bad_request"

    def __init__(self, provider: str, detail: str, status: int | None = None) -> None:
        self.status = status
        self.detail = detail
        http = f" (HTTP {status})" if status else ""
        super().__init__(provider, f"{provider} rejected the request{http}: {detail}")


# Failures after which trying the fallback provider makes sense.
FALLBACK_ON = (ProviderUnreachable, ProviderDown)


def http_status(err: ProviderError) -> int:
    """The status ThreadWeaver answers a provider failure with: 429 rate limit, 400 rejected, 502 otherwise
    (unreachable, down, refusing our key: the fault is between ThreadWeaver and the provider)."""
    if isinstance(err, ProviderRateLimited):
        return 429
    if isinstance(err, ProviderBadRequest):
        return 400
    return 502


def provider_message(body: bytes | str | Any) -> str | None:
    """The error text in a provider's JSON error body, or None."""
    parsed = json_object(body)
    if parsed is None:
        return None
    error = parsed.get("error", parsed.get("message", parsed.get("detail")))
    if isinstance(error, dict):
        error = error.get("message") or error.get("type") or error.get("code")
    if isinstance(error, list):  # FastAPI-style validation details (Mistral's 422)
        error = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in error)
    return str(error) if error else None


def from_exception(provider: str, exc: httpx.HTTPError, url: str | httpx.URL, timeout: float | None) -> ProviderError:
    address = address_of(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderUnreachable(provider, address, f"no answer to connect within {timeout:g} s" if timeout else "")
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnreachable(provider, address, connect_reason(exc))
    if isinstance(exc, httpx.TimeoutException):
        return ProviderDown(provider, f"no answer within {timeout:g} s" if timeout else "timed out")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ProviderDown(provider, "the connection closed without a complete answer")
    return ProviderError(provider, f"{type(exc).__name__}: {exc}")


def from_response(provider: str, status: int, body: bytes, headers: httpx.Headers | None = None) -> ProviderError:
    message = provider_message(body) or one_line(body.decode(errors="replace"), 200) or "empty body"
    if status in (401, 403):
        return ProviderAuthError(provider, f"HTTP {status}: {message}")
    if status == 429:
        retry = (headers or {}).get("retry-after")
        try:
            seconds = float(retry) if retry else None
        except ValueError:
            seconds = None
        return ProviderRateLimited(provider, message, seconds)
    if status >= 500:  # 529 is Anthropic's "overloaded"
        return ProviderDown(provider, f"HTTP {status}: {message}")
    return ProviderBadRequest(provider, message, status)
