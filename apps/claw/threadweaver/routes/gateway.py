"""``/v1``: the OpenAI-compatible gateway (:mod:`..gateway`). Its own bearer keys (per client, not the console
session), and OpenAI's error shape (:func:`..gateway.error_response`).

The console's hooks apply here too, through the same pipeline (:class:`..hooks.ReplyFilter`): ``pre_send`` on the
messages before they leave, ``on_chunk`` on every chunk and ``post_receive`` on the whole reply before the agent
gets any of it. A hook's block is 403 ``hook_blocked``, a failing hook 500 ``hook_failed``, one that takes too long
504 ``hook_timeout`` (mid-stream: an error event, no ``[DONE]``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, StreamingResponse

from claw.threadweaver.blocking import in_thread
from claw.threadweaver.gateway import Client, Completion, GatewayError, events, not_found, parse_body
from claw.threadweaver.hooks import HookBlocked, HookContext, HookFailed, HookTimeout, ReplyFilter
from claw.threadweaver.providers.model import Chunk
from claw.threadweaver.router import Route
from claw.threadweaver.routes.deps import ConsoleDep, GatewayDep

router = APIRouter(prefix="/v1", tags=["gateway"])


@router.get("/models")
async def models(request: HttpRequest, gateway: GatewayDep) -> dict[str, Any]:
    client = gateway.authenticate(request.headers.get("authorization"))
    return {"object": "list", "data": gateway.models(client)}


@router.get("/models/{model_id:path}")
async def model(model_id: str, request: HttpRequest, gateway: GatewayDep) -> dict[str, Any]:
    client = gateway.authenticate(request.headers.get("authorization"))
    for entry in gateway.models(client):
        if entry["id"] == model_id:
            return entry
    raise not_found(model_id, "GET /v1/models lists the models this key may use")


def from_hook(err: HookBlocked | HookFailed) -> GatewayError:
    status = 403 if isinstance(err, HookBlocked) else 504 if isinstance(err, HookTimeout) else 500
    return GatewayError(status, str(err), err.code)


async def filtered(
    chunks: AsyncGenerator[Chunk, None], reply_filter: ReplyFilter, hook_failed: Any
) -> AsyncGenerator[Chunk, None]:
    """The provider's chunks as the hooks let them through; with post_receive hooks, the whole text comes with
    the last chunk. A hook's error ends the stream as a :class:`GatewayError` (an error event)."""
    try:
        async for chunk in chunks:
            text = await reply_filter.chunk(chunk.text)
            if chunk.done and reply_filter.hold_back:
                text = await reply_filter.finish()
            yield chunk if text is chunk.text else dataclasses.replace(chunk, text=text)
    except (HookBlocked, HookFailed) as err:
        raise hook_failed(err) from None
    finally:
        await chunks.aclose()


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    request: HttpRequest, gateway: GatewayDep, console: ConsoleDep
) -> JSONResponse | StreamingResponse:
    await gateway.refresh_limits()  # the limits file, if it changed
    client = gateway.authenticate(request.headers.get("authorization"))
    body = parse_body(await request.body())
    route = gateway.resolve(client, body.model)
    # The caps reached already (ledger queries) are checked before the pre_send hooks run; with no such hook,
    # nothing happens in between, so the check goes with the reservation, in one worker call.
    check_apart = console.hooks.has("pre_send")
    if check_apart:
        await in_thread(gateway.check, client, route)
    completion = Completion(body.model)
    provider_request = gateway.limit(client, body.to_request(route.model))  # the client's limits

    def hook_failed(err: HookBlocked | HookFailed) -> GatewayError:
        gateway.metrics.gateway_request(client.name, route.provider, err.code)
        return from_hook(err)

    context = hook_context(client, route, provider_request.messages)
    try:
        await console.hooks.pre_send(context)
    except (HookBlocked, HookFailed) as err:
        raise hook_failed(err) from None
    provider_request.messages = context.messages
    reply_filter = ReplyFilter(console.hooks, context)
    if not body.stream:
        result = await gateway.complete(client, route, provider_request, check=not check_apart)
        try:
            result = dataclasses.replace(result, text=await reply_filter.whole(result.text))
        except (HookBlocked, HookFailed) as err:
            raise hook_failed(err) from None
        return JSONResponse(completion.body(result))
    chunks = await gateway.stream(client, route, provider_request, check=not check_apart)
    return StreamingResponse(
        events(completion, filtered(chunks, reply_filter, hook_failed), body.include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


def hook_context(client: Client, route: Route, messages: list[Any]) -> HookContext:
    """What the hooks see of a gateway request: no thread (``thread_id`` is empty), the client in ``metadata``."""
    return HookContext("pre_send", "", route.provider, route.model, messages, metadata={"gateway_client": client.name})
