"""The thread store's key: from an environment variable, or from a per-appliance file made on first use.

The file holds 64 hex characters (32 random bytes) and must be the owner's alone (mode 0600 or stricter); a file
others can read is refused rather than silently used, because whoever reads it can read every thread.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

DEFAULT_ENV = "THREADWEAVER_STORE_KEY"


class KeyFileError(Exception):
    """The key file is missing and cannot be made, is too open, or is empty."""


def load_or_create(path: Path) -> str:
    """The key in ``path``; a new random key is written there (mode 0600) if the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs below
        except OSError as err:
            raise KeyFileError(f"cannot create the thread store key file {path}: {err.strerror}") from err
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(key + "\n")
            return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"the thread store key file {path} has mode {mode:04o}, readable by others; "
            f"run: chmod 600 {path} (and check who has read it)"
        )
    key = path.read_text().strip()
    if not key:
        raise KeyFileError(f"the thread store key file {path} is empty; restore it from backup")
    return key


def resolve(key_file: Path | None, env: str = DEFAULT_ENV) -> str:
    """The key from ``$env`` if set, else from ``key_file``."""
    from_env = os.environ.get(env, "").strip()
    if from_env:
        return from_env
    if key_file is None:
        raise KeyFileError(f"no thread store key: set {env} or configure store.key_file")
    return load_or_create(key_file)
