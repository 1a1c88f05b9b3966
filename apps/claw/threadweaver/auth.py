"""The appliance's console password (an scrypt hash in a file) and the sessions it opens.

Hash format, one line: ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``; make one with
``python -m claw.threadweaver hash-password``. A login returns a random bearer token, also set as an HttpOnly,
SameSite=Strict cookie; tokens live in memory (a restart logs everyone out) for ``ttl_s``.

scrypt costs tens of milliseconds of CPU by design: the HTTP layer calls :meth:`Sessions.login` in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
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


class Sessions:
    def __init__(self, password_hash: str, ttl_s: float = 12 * 3600) -> None:
        self.password_hash = password_hash
        self.ttl_s = ttl_s
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
