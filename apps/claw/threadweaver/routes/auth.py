"""``POST /login`` (the console password for a session token, also set as a cookie) and ``POST /logout``.

Failed logins are throttled per client address and over all addresses (:class:`..auth.LoginThrottle`): 429
``login_throttled`` with ``Retry-After``, the password not even tried."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from claw.threadweaver.auth import COOKIE, retry_after
from claw.threadweaver.routes.deps import LOGGED_IN, Session, SessionsDep
from claw.threadweaver.routes.errors import error

router = APIRouter()


class Login(BaseModel):
    password: str


@router.post("/login", response_model=dict[str, str])
def login(body: Login, request: Request, response: Response, sessions: SessionsDep) -> dict[str, str] | JSONResponse:
    # A plain def: scrypt (tens of milliseconds of CPU) runs in a worker thread, not on the event loop.
    address = request.client.host if request.client else "unknown"
    wait = sessions.throttle.attempt(address)
    if wait > 0:
        refused = error(429, "login_throttled", f"too many failed logins; try again in {retry_after(wait)} s")
        refused.headers["retry-after"] = retry_after(wait)
        return refused
    token = sessions.login(body.password)
    if token is None:
        raise HTTPException(401, "wrong password")
    sessions.throttle.succeeded(address)
    # Secure when the page was served over HTTPS (directly, or by a proxy uvicorn trusts for X-Forwarded-Proto);
    # not on plain-HTTP loopback, where a Secure cookie would never be sent back.
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(sessions.ttl_s),
    )
    return {"token": token}


@router.post("/logout", dependencies=LOGGED_IN)
async def logout(response: Response, token: Session, sessions: SessionsDep) -> dict[str, str]:
    sessions.logout(token)
    response.delete_cookie(COOKIE)
    return {"status": "logged out"}
