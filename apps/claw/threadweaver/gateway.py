"""An OpenAI-compatible face for OpenClaw's agents (``/v1/chat/completions``, ``/v1/models``), with spend caps.

OpenClaw has no spend caps; its cloud providers (``api: "openai-completions"``) point at this gateway instead of
at the cloud. Each client (an agent) has a bearer key, optional caps in USD and in tokens (``cap_tokens``: input
and output together, over all providers, free local ones included) and the providers it may use. A
request names ``provider/model`` (``openai/gpt-4o-mini``, ``claude/claude-sonnet-4-5``, ``crush/gemma3-270m``):
the ThreadWeaver provider and its model. The OpenAI body is translated to the provider-neutral model
(:mod:`.providers.model`, with the OpenAI adapter's own wire helpers), sent through that provider's adapter (so
an agent can use Anthropic through OpenAI's API), and the answer translated back: JSON, or SSE chunks in OpenAI's
format ending with ``data: [DONE]``.

Order of checks, all before anything is sent: the key (401), the body (400, naming the field), the model (404
``model_not_found``), the client's providers (403), the model's price (400 ``model_not_priced``), then the
client's caps, the provider's cap and the token caps with the request's worst case reserved (402; the provider cap
counts threads and gateway together; :mod:`.governance`). The client's ``max_output_tokens`` and
``max_history_turns`` are applied to the request (:meth:`Gateway.limit`). Usage and cost are recorded per request
in the ledger's ``gateway_usage`` table (no message text; :mod:`.ledger`). A request cut short (the client went
away, the provider failed mid-way) is recorded with estimated tokens and status ``partial``, so aborting streams
does not dodge a cap.

402, not OpenAI's 429 ``insufficient_quota``: the rest of ThreadWeaver answers a reached cap with 402 (a money
limit: waiting does not help); and a 429 would make OpenAI clients (OpenClaw included) retry with back-off, which
only repeats the refusal. The body is still OpenAI's, with ``type: insufficient_quota``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from claw.threadweaver.blocking import in_thread, in_thread_shielded
from claw.threadweaver.governance import (
    Governance,
    ModelNotPriced,
    SpendCapReached,
    estimate_usage,
    trim_history,
    usage_or_estimate,
)
from claw.threadweaver.limits_overlay import LimitsOverlay, Overrides
from claw.threadweaver.metrics import Metrics
from claw.threadweaver.providers.errors import ProviderError, ProviderRateLimited, http_status
from claw.threadweaver.providers.model import Chunk, Message, Request, Result, ToolCall, Usage
from claw.threadweaver.providers.openai import message_of, tool_specs_of, wire_message, wire_usage
from claw.threadweaver.router import Hold, Route, Router

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 402: "insufficient_quota"}
_TYPES.update({403: "permission_error", 404: "invalid_request_error", 429: "rate_limit_error"})


class GatewayError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        self.status = status
        self.code = code
        self.param = param
        self.headers: dict[str, str] = {}
        super().__init__(message)

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


def error_response(request: HttpRequest, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def not_found(model_id: str, hint: str) -> GatewayError:
    return GatewayError(404, f"the model '{model_id}' does not exist; {hint}", "model_not_found", "model")


def from_cap(err: SpendCapReached) -> GatewayError:
    """402 for a cap; a model without a price is the request's fault: 400 naming ``model``."""
    if isinstance(err, ModelNotPriced):
        return GatewayError(400, str(err), err.code, "model")
    return GatewayError(402, str(err), err.code)


def from_provider(err: ProviderError) -> GatewayError:
    error = GatewayError(http_status(err), str(err), err.code)
    if isinstance(err, ProviderRateLimited) and err.retry_after:
        error.headers["retry-after"] = f"{err.retry_after:g}"
    return error


# -- clients -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    name: str
    key: str
    cap_usd: float | None = None
    providers: frozenset[str] | None = None  # None: every configured provider
    max_output_tokens: int | None = None  # the most tokens a reply may have, whatever the agent asks
    max_history_turns: int | None = None  # the newest whole turns sent (system messages always)
    cap_tokens: int | None = None  # tokens in and out over all providers (a local engine's too); None: no cap

    def allows(self, provider: str) -> bool:
        return self.providers is None or provider in self.providers


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


# -- the request body ----------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI's fields the gateway does not use are ignored


class WireFunctionCall(_Wire):
    name: str
    arguments: Any = ""


class WireToolCall(_Wire):
    id: str
    type: str = "function"
    function: WireFunctionCall


class WireMessage(_Wire):
    role: str
    content: Any = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, role: str) -> str:
        if role not in CHAT_ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(CHAT_ROLES)}")
        return role

    @field_validator("content")
    @classmethod
    def _content(cls, content: Any) -> Any:
        if content is None or isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise ValueError("content must be a string or a list of content parts")
        for n, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"content part {n} ({kind}): the gateway passes text parts only")
        return content

    @model_validator(mode="after")
    def _tool_result(self) -> WireMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class WireFunction(_Wire):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class WireTool(_Wire):
    type: str = "function"
    function: WireFunction

    @field_validator("type")
    @classmethod
    def _function(cls, kind: str) -> str:
        if kind != "function":
            raise ValueError(f"tool type {kind!r}: only function tools are supported")
        return kind


class StreamOptions(_Wire):
    include_usage: bool = False


class ChatCompletionRequest(_Wire):
    model: str = Field(min_length=1)
    messages: list[WireMessage] = Field(min_length=1)
    tools: list[WireTool] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)
    n: int | None = Field(None, ge=1, le=1)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def to_request(self, model: str) -> Request:
        """The provider-neutral request for ``model`` (the provider's own name for it)."""
        return Request(
            model,
            [message_of(m.model_dump(exclude_none=True)) for m in self.messages],
            tools=tool_specs_of([t.model_dump(exclude_none=True) for t in self.tools or []]),
            max_output_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
        )


def _param(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as OpenAI names parameters: ``messages[0].content``."""
    param = ""
    for part in loc:
        param += f"[{part}]" if isinstance(part, int) else (f".{part}" if param else str(part))
    return param


def parse_body(raw: bytes) -> ChatCompletionRequest:
    try:
        data = json.loads(raw)
    except ValueError:
        raise GatewayError(400, "the body is not JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise GatewayError(400, "the body must be a JSON object", "invalid_json")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        param = _param(first["loc"])
        missing = first["type"] == "missing"
        message = f"missing required parameter: '{param}'" if missing else f"invalid '{param}': {first['msg']}"
        raise GatewayError(400, message, "missing_required_parameter" if missing else "invalid_value", param) from None


# -- the answer -------------------------------------------------------------------------------------------


@dataclass
class Completion:
    """One answer's identity, shared by its JSON body or by all its stream chunks."""

    model: str  # the id the client asked for (provider/model)
    id: str = ""
    created: int = 0
    _content: dict[bool, tuple[str, str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id = self.id or f"chatcmpl-{uuid.uuid4().hex}"
        self.created = self.created or int(time.time())

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def body(self, result: Result) -> dict[str, Any]:
        message = wire_message(Message("assistant", result.text, tool_calls=result.tool_calls))
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish(result)}
        return {**self._head("chat.completion"), "choices": [choice], "usage": wire_usage(result.usage)}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, usage: bool = False) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._head("chat.completion.chunk"), "choices": [choice]}
        if usage:
            chunk["usage"] = None  # OpenAI: null in every chunk but the last when include_usage is asked
        return chunk

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": wire_usage(usage)}

    def content_event(self, text: str, usage: bool = False) -> str:
        """``sse(self.chunk({"content": text}, usage=usage))``, the same characters, from a template made once:
        every chunk of a stream is one of these, and only its text changes."""
        template = self._content.get(usage)
        if template is None:
            # The delta is the only unquoted {"content": null} (quotes inside the id and model are escaped).
            head, _, tail = sse(self.chunk({"content": None}, usage=usage)).partition('{"content": null}')
            template = self._content[usage] = (head + '{"content": ', "}" + tail)
        return template[0] + json.dumps(text) + template[1]


def finish(result: Result | Chunk) -> str:
    return str(result.finish_reason or ("tool_calls" if result.tool_calls else "stop"))


def call_deltas(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """The assembled tool calls as stream deltas, one whole call each (``index``, id, name, JSON arguments)."""
    wire = wire_message(Message("assistant", tool_calls=calls)).get("tool_calls") or []
    return [{"tool_calls": [{"index": n, **call}]} for n, call in enumerate(wire)]


def sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


# -- the gateway --------------------------------------------------------------------------------------------


class Gateway:
    """Clients, their caps and their usage, in front of the console's providers, prices and caps."""

    def __init__(
        self,
        router: Router,
        governance: Governance,
        metrics: Metrics,
        clients: Iterable[Client] = (),
        *,
        limits_file: Path | None = None,
    ) -> None:
        """``limits_file``: overrides of the clients' limits, read now and again when it changes
        (:mod:`.limits_overlay`)."""
        self.router = router
        self.governance = governance
        self.metrics = metrics
        self.ledger = governance.ledger
        self.configured = {client.name: client for client in clients}
        self._use(self.configured)
        self.overlay: LimitsOverlay | None = None
        if limits_file is not None:
            self.overlay = LimitsOverlay(limits_file, self.configured, self.apply_limits)
            self.overlay.load()

    def _use(self, clients: dict[str, Client]) -> None:
        # Requests in flight keep the Client they authenticated as; their reservations are the governance's.
        keys = [(_digest(client.key), client) for client in clients.values()]
        self.clients, self._keys = clients, keys

    def apply_limits(self, overrides: Overrides) -> None:
        """The configured clients with ``overrides`` (client -> limits, validated) laid over them."""
        self._use(
            {name: dataclasses.replace(client, **overrides.get(name, {})) for name, client in self.configured.items()}
        )

    async def refresh_limits(self) -> None:
        """The limits file again if it changed (a ``stat``; the read off the loop)."""
        if self.overlay is not None:
            await self.overlay.refresh()

    def refresh_limits_blocking(self) -> None:
        if self.overlay is not None:
            self.overlay.load()

    def limits(self) -> dict[str, dict[str, Any]]:
        """Each client's limits in force (the config's, or the limits file's)."""
        return {
            name: {
                "cap_usd": client.cap_usd,
                "cap_tokens": client.cap_tokens,
                "max_output_tokens": client.max_output_tokens,
                "max_history_turns": client.max_history_turns,
            }
            for name, client in self.clients.items()
        }

    def authenticate(self, header: str | None) -> Client:
        scheme, _, key = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise GatewayError(401, "no API key: send Authorization: Bearer <key>", "missing_api_key")
        presented = _digest(key.strip())
        found: Client | None = None
        for digest, client in self._keys:  # every key compared, in constant time: no early exit
            if hmac.compare_digest(digest, presented):
                found = client
        if found is None:
            raise GatewayError(401, "incorrect API key", "invalid_api_key")
        return found

    def models(self, client: Client) -> list[dict[str, Any]]:
        """The models the client may name: each allowed provider's configured models."""
        return [
            {"id": f"{name}/{model}", "object": "model", "created": 0, "owned_by": name}
            for name in sorted(self.router.providers)
            if client.allows(name)
            for model in self.router.models.get(name, [])
        ]

    def resolve(self, client: Client, model_id: str) -> Route:
        """``provider/model`` as a route: 404 unknown, 403 not for this client. A provider listing no models
        takes any model name (as the console does); one listing models takes those only."""
        provider, _, model = model_id.partition("/")
        if provider not in self.router.providers or not model:
            raise not_found(model_id, "name one as provider/model")
        if not client.allows(provider):
            self.metrics.gateway_request(client.name, provider, "forbidden")
            message = f"client {client.name} may not use provider {provider}"
            raise GatewayError(403, message, "provider_not_allowed", "model")
        listed = self.router.models.get(provider, [])
        if listed and model not in listed:
            raise not_found(model_id, f"{provider} offers {', '.join(listed)}")
        return Route(provider, model)

    def caps(self) -> dict[str, float | None]:
        """Each client's cap in USD (None: none)."""
        return {name: client.cap_usd for name, client in self.clients.items()}

    def token_caps(self) -> dict[str, int | None]:
        """Each client's cap in tokens (None: none)."""
        return {name: client.cap_tokens for name, client in self.clients.items()}

    def limit(self, client: Client, request: Request) -> Request:
        """The client's limits: at most ``max_output_tokens`` whatever the agent asks (none asked: that), and the
        system messages with the newest ``max_history_turns`` whole turns (:func:`.governance.trim_history`)."""
        most = client.max_output_tokens
        if most is not None:
            request.max_output_tokens = min(request.max_output_tokens or most, most)
        if client.max_history_turns is not None:
            request.messages = trim_history(request.messages, max_turns=client.max_history_turns)
        return request

    def check(self, client: Client, route: Route) -> None:
        """The client's and the provider's caps reached already, and the model's price, before anything else
        (queries the ledger: blocking); the request's worst case is reserved by :meth:`complete` and :meth:`stream`."""
        try:
            self.governance.check(
                route.provider, route.model, client=client.name, client_cap=client.cap_usd,
                client_cap_tokens=client.cap_tokens,
            )  # fmt: skip
        except SpendCapReached as err:
            raise self.refused(client, route, err) from None

    def refused(self, client: Client, route: Route, err: SpendCapReached) -> GatewayError:
        self.metrics.refused.labels("spend_cap").inc()
        self.metrics.gateway_request(client.name, route.provider, err.code)
        return from_cap(err)

    async def reserve(self, client: Client, route: Route, request: Request, *, check: bool = False) -> Hold:
        """``request``'s worst case held against the client's and the provider's caps, atomically with every
        other request in flight; 402 (nothing sent, nothing held) when a cap would be exceeded. The caller
        releases the hold once the usage is recorded. ``check``: :meth:`check` first, in the same worker call
        (for a caller that did not check already)."""
        hold = Hold()
        first = (lambda: self.check(client, route)) if check else None
        try:
            await self.router.reserve(
                route, request, hold, first=first, client=client.name, client_cap=client.cap_usd,
                client_cap_tokens=client.cap_tokens,
            )  # fmt: skip
        except SpendCapReached as err:
            raise self.refused(client, route, err) from None
        return hold

    def failed(self, client: Client, route: Route, err: ProviderError) -> GatewayError:
        self.metrics.failure(route.provider, err.code)
        self.metrics.gateway_request(client.name, route.provider, err.code)
        return from_provider(err)

    def record(self, client: Client, route: Route, usage: Usage, started: float, hold: Hold | None = None) -> None:
        """A whole answer: its usage and cost stored and counted, ``hold``'s reservation closed in the same
        transaction (writes the ledger: blocking)."""
        cost = self._store_usage(client, route, usage, "complete", hold)
        self.metrics.reply(route.provider, usage.input_tokens, usage.output_tokens, cost, time.monotonic() - started)
        self.metrics.gateway_request(client.name, route.provider, "ok", cost)

    def record_partial(
        self, client: Client, route: Route, request: Request, text: str, outcome: str | None, hold: Hold | None = None
    ) -> None:
        """A request cut short: tokens estimated (:func:`.governance.estimate_usage`, ≈len/4 of the prompt and of
        the text so far), so the spend counts towards the caps all the same (writes the ledger: blocking)."""
        usage = estimate_usage(request, text)
        cost = self._store_usage(client, route, usage, "partial", hold)
        self.metrics.usage(route.provider, usage.input_tokens, usage.output_tokens, cost)
        if outcome is not None:
            self.metrics.gateway_request(client.name, route.provider, outcome, cost)

    def _store_usage(self, client: Client, route: Route, usage: Usage, status: str, hold: Hold | None) -> float:
        cost = self.governance.cost(route.provider, route.model, usage)
        with self.governance.settling(hold.reservation if hold else None):
            self.ledger.record_gateway_usage(
                client.name, route.provider, route.model, tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens, cost_usd=cost, status=status,
            )  # fmt: skip
        return cost

    async def complete(self, client: Client, route: Route, request: Request, *, check: bool = False) -> Result:
        """``check``: :meth:`check` too, in the reservation's worker call (see :meth:`reserve`)."""
        hold = await self.reserve(client, route, request, check=check)
        sent = hold.request
        assert sent is not None
        started = time.monotonic()
        try:
            try:
                result = await self.router.providers[route.provider].complete(sent)
            except ProviderError as err:
                raise self.failed(client, route, err) from None
            except BaseException:  # cancelled while the provider worked: the prompt was sent, it counts
                await in_thread_shielded(self.record_partial, client, route, sent, "", "partial", hold)
                raise
            usage = usage_or_estimate(result.usage, sent, result.text)
            await in_thread(self.record, client, route, usage, started, hold)
        finally:
            await hold.arelease()
        return result

    async def stream(
        self, client: Client, route: Route, request: Request, *, check: bool = False
    ) -> AsyncGenerator[Chunk, None]:
        """The provider's chunks; the first is awaited before this returns, so a provider that fails at once is
        answered with an HTTP status, not a broken stream. ``check``: as :meth:`complete`'s."""
        hold = await self.reserve(client, route, request, check=check)
        sent = hold.request
        assert sent is not None
        started = time.monotonic()
        chunks = cast(AsyncGenerator[Chunk, None], self.router.providers[route.provider].stream(sent))
        try:
            first = await anext(chunks, Chunk(done=True, usage=Usage()))
        except ProviderError as err:
            await hold.arelease()
            raise self.failed(client, route, err) from None
        except BaseException:  # cancelled before the first chunk: the prompt was sent, it counts
            await in_thread_shielded(self.record_partial, client, route, sent, "", "partial", hold)
            await hold.arelease()
            raise
        return self._rest(client, route, hold, _Stream(chunks, first, started))

    async def _rest(self, client: Client, route: Route, hold: Hold, stream: _Stream) -> AsyncGenerator[Chunk, None]:
        sent = hold.request
        assert sent is not None
        text, done, outcome = "", False, "partial"
        try:
            chunk: Chunk | None = stream.first
            while chunk is not None:
                text += chunk.text
                if chunk.done:
                    done = True
                    usage = usage_or_estimate(chunk.usage, sent, text)
                    await in_thread(self.record, client, route, usage, stream.started, hold)
                yield chunk
                chunk = None if done else await anext(stream.chunks, None)
        except ProviderError as err:
            self.failed(client, route, err)
            outcome = None  # counted as the failure
            raise
        finally:
            if not done:  # shielded: a cancelled task would not get past an await otherwise
                await in_thread_shielded(self.record_partial, client, route, sent, text, outcome, hold)
            await hold.arelease()
            await stream.chunks.aclose()


@dataclass
class _Stream:
    chunks: AsyncGenerator[Chunk, None]
    first: Chunk
    started: float


async def events(
    completion: Completion, chunks: AsyncGenerator[Chunk, None], include_usage: bool
) -> AsyncIterator[str]:
    try:
        yield sse(completion.chunk({"role": "assistant", "content": ""}, usage=include_usage))
        async for chunk in chunks:
            if chunk.text:
                yield completion.content_event(chunk.text, include_usage)
            if chunk.done:
                for delta in call_deltas(chunk.tool_calls):
                    yield sse(completion.chunk(delta, usage=include_usage))
                yield sse(completion.chunk({}, finish(chunk), usage=include_usage))
                if include_usage:
                    yield sse(completion.usage_chunk(chunk.usage or Usage()))
    except ProviderError as err:  # mid-stream: the status is sent already; OpenAI sends an error event
        yield sse(from_provider(err).body())
        return
    except GatewayError as err:  # a hook refused the reply mid-stream (routes.gateway.filtered)
        yield sse(err.body())
        return
    finally:
        await chunks.aclose()  # a client that went away: the usage so far is recorded (see Gateway._rest)
    yield sse("[DONE]")
