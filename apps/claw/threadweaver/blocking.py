"""Blocking work off the event loop: the store's and the ledger's queries, scrypt, synchronous hooks.

The app serves every request and stream from one event loop; a call that blocks it (a search over many
messages, a login's scrypt) would stall every other request and stream for as long. Such calls run in a worker
thread (anyio's pool) instead, and the loop goes on meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function(*args, **kwargs)`` in a worker thread; cancelling the caller leaves it to finish there."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


async def in_thread_shielded(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """:func:`in_thread`, awaited to the end even when the caller is being cancelled (a record that must be
    written, from a ``finally`` of a stream the client left)."""
    with anyio.CancelScope(shield=True):
        return await in_thread(function, *args, **kwargs)
