"""``/v1``: the OpenAI-compatible gateway (:mod:`..gateway`). Its own bearer keys (per client, not the console
session), and OpenAI's error shape (:func:`..gateway.error_response`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, StreamingResponse

from claw.threadweaver.blocking import in_thread
from claw.threadweaver.gateway import Completion, events, not_found, parse_body
from claw.threadweaver.routes.deps import GatewayDep

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


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: HttpRequest, gateway: GatewayDep) -> JSONResponse | StreamingResponse:
    client = gateway.authenticate(request.headers.get("authorization"))
    body = parse_body(await request.body())
    route = gateway.resolve(client, body.model)
    await in_thread(gateway.check, client, route)  # the caps: ledger queries
    completion = Completion(body.model)
    provider_request = body.to_request(route.model)
    if not body.stream:
        return JSONResponse(completion.body(await gateway.complete(client, route, provider_request)))
    chunks = await gateway.stream(client, route, provider_request)
    return StreamingResponse(
        events(completion, chunks, body.include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )
