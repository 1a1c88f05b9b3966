"""The appliance's console password (an scrypt hash in a file) and the sessions it opens.

Hash format, one line: ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``; make one with
``python -m claw.threadweaver hash-password``. A login returns a random bearer token, also set as an HttpOnly,
SameSite=Strict cookie; tokens live in memory (a restart logs everyone out) for ``ttl_s``.

scrypt costs tens of milliseconds of CPU by design: the HTTP layer calls :meth:`Sessions.login` in a worker thread,
never on the event loop.

Guessing is throttled (:class:`LoginThrottle`, in memory): per client address and over all addresses, failed
logins past a few make the next attempt wait, the wait doubling with each further failure.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

N, R, P = 2**14, 8, 1
# The console password's minimum length: the Ansible role's preflight demands the same (threadweaver_password).
MIN_PASSWORD_LENGTH = 12
COOKIE = "threadweaver_session"


class PasswordFileError(Exception):
    pass


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be the console password ("needs at least 12 characters"), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"needs at least {MIN_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected) // 2
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


def read_hash(path: Path) -> str:
    try:
        stored = path.read_text().strip()
    except OSError as err:
        raise PasswordFileError(
            f"cannot read the console password file {path} ({err.strerror}); make it with: "
            f"python -m claw.threadweaver hash-password > {path}"
        ) from err
    if not stored.startswith("scrypt$") or stored.count("$") != 5:
        raise PasswordFileError(f"{path} does not hold an scrypt hash (scrypt$n$r$p$salt$hash)")
    return stored


def sync_hash(password_file: Path, hash_file: Path) -> bool:
    """Write ``hash_file`` from the plain password in ``password_file`` unless it already verifies it.

    Returns whether the hash was rewritten, so provisioning changes (and restarts) only when the password did.
    """
    password = password_file.read_text().strip()
    problem = password_problem(password)
    if problem:
        raise PasswordFileError(f"the console password in {password_file} {problem}")
    try:
        if verify_password(password, read_hash(hash_file)):
            return False
    except PasswordFileError:
        pass  # missing or not a hash: written below
    hash_file.write_text(hash_password(password) + "\n")
    return True


@dataclass
class _Strikes:
    failures: int = 0
    last: float = 0.0
    until: float = 0.0  # no attempt before this (monotonic clock)


class LoginThrottle:
    """Backoff for password guessing, per client address and over all addresses together (in memory: a restart
    forgets it).

    Every attempt counts as a failure until it succeeds (so attempts sent side by side count before scrypt has
    answered any); a success takes its own back. Past ``free`` failures from one address, each further one makes
    that address wait ``base_s`` (1 s), then twice as long each time, up to ``max_wait_s`` (15 min); past
    ``global_free`` failures from all addresses together, every address waits likewise (someone guessing from many
    addresses). An address's failures are forgotten ``forget_s`` after its last one; a success forgets them at
    once. Attempts while waiting are refused without trying the password (HTTP 429 with ``Retry-After``). Behind
    a reverse proxy every client has the proxy's address unless uvicorn trusts the proxy's ``X-Forwarded-For``.
    """

    GLOBAL = "*"

    def __init__(
        self,
        free: int = 5,
        global_free: int = 50,
        base_s: float = 1.0,
        max_wait_s: float = 900.0,
        forget_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.global_free = global_free
        self.base_s = base_s
        self.max_wait_s = max_wait_s
        self.forget_s = forget_s
        self.clock = clock
        self._strikes: dict[str, _Strikes] = {}
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> _Strikes:
        strikes = self._strikes.get(key)
        if strikes is None or now - strikes.last > self.forget_s:
            if len(self._strikes) > 10_000:  # many addresses: drop the forgotten ones
                self._strikes = {k: v for k, v in self._strikes.items() if now - v.last <= self.forget_s}
            strikes = self._strikes[key] = _Strikes()
        return strikes

    def _strike(self, strikes: _Strikes, free: int, now: float) -> None:
        strikes.failures += 1
        strikes.last = now
        if strikes.failures > free:
            wait = min(self.base_s * 2 ** min(strikes.failures - free - 1, 30), self.max_wait_s)
            strikes.until = max(strikes.until, now + wait)

    def attempt(self, address: str) -> float:
        """0 and the attempt counted as a failure (until :meth:`succeeded`), or the seconds to wait first."""
        with self._lock:
            now = self.clock()
            mine, everyone = self._get(address, now), self._get(self.GLOBAL, now)
            wait = max(mine.until, everyone.until) - now
            if wait > 0:
                return wait
            self._strike(mine, self.free, now)
            self._strike(everyone, self.global_free, now)
            return 0.0

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._strikes.pop(address, None)
            everyone = self._strikes.get(self.GLOBAL)
            if everyone is not None and everyone.failures > 0:
                everyone.failures -= 1


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


class Sessions:
    def __init__(self, password_hash: str, ttl_s: float = 12 * 3600, throttle: LoginThrottle | None = None) -> None:
        self.password_hash = password_hash
        self.ttl_s = ttl_s
        self.throttle = throttle or LoginThrottle()
        self._tokens: dict[str, float] = {}

    def login(self, password: str) -> str | None:
        if not verify_password(password, self.password_hash):
            return None
        token = secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic() + self.ttl_s
        return token

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        expires = self._tokens.get(token)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._tokens[token]
            return False
        return True

    def logout(self, token: str) -> None:
        self._tokens.pop(token, None)
