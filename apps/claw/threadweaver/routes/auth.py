"""``POST /login`` (the console password for a session token, also set as a cookie) and ``POST /logout``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel

from claw.threadweaver.auth import COOKIE
from claw.threadweaver.routes.deps import LOGGED_IN, Session, SessionsDep

router = APIRouter()


class Login(BaseModel):
    password: str


@router.post("/login")
def login(body: Login, request: Request, response: Response, sessions: SessionsDep) -> dict[str, str]:
    # A plain def: scrypt (tens of milliseconds of CPU) runs in a worker thread, not on the event loop.
    token = sessions.login(body.password)
    if token is None:
        raise HTTPException(401, "wrong password")
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
