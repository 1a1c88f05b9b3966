"""The console password the ThreadWeaver tests log in with: made per test run, never a fixed secret."""

from __future__ import annotations

import secrets

from claw.threadweaver import auth

PASSWORD = secrets.token_urlsafe(18)


def sessions() -> auth.Sessions:
    """The console's session store for PASSWORD (a cheap scrypt cost: tests, not an appliance)."""
    return auth.Sessions(auth.hash_password(PASSWORD, n=2**10))
