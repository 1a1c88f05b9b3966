"""The operator's hooks: Python files in a directory, each defining any of ``pre_send(context)``,
``on_chunk(context)`` and ``post_receive(context)``.

* ``pre_send`` sees ``context.messages`` (what will be sent) and may change them in place or block.
* ``on_chunk`` sees each streamed ``context.chunk``; it may return a replacement text or block.
* ``post_receive`` sees the whole ``context.text`` before the user does; it may return a redacted text or block.

Blocking is ``raise HookBlocked("reason")``. Any other exception is a failing hook: the turn stops with
:class:`HookFailed`, whose message names the file, the function and the error (the console stores it in the
thread as a note; the user's message is already stored).

One pipeline for every reply, the console's threads and the ``/v1`` gateway alike (:class:`ReplyFilter`): each
chunk passes the ``on_chunk`` hooks before it is shown *or stored* (a reply that is not streamed is one chunk),
and when any ``post_receive`` hook exists, nothing of the reply is shown or stored until the reply is complete and
has passed them (the user then gets the checked text in one piece; the stored ``partial`` row stays empty until
then, so a crash mid-stream leaves no unchecked text). A reply cut short (the provider failed) passes the
``post_receive`` hooks as it is before its part is stored. The raw text of the provider is never stored or shown.
``on_chunk`` sees one chunk at a time (a word may be split across two chunks): a filter that must see whole words
or the whole reply belongs in ``post_receive``.

Files are loaded in name order, once, at start. Every hook runs off the event loop and within ``timeout_s``
(config ``hook_timeout_s``): a plain function in a worker thread (it may block: a file, a slow pattern), an
``async def`` one in an event loop of its own in a worker thread (so even one that blocks cannot stall the
server), cancelled at the timeout. A hook that takes longer ends its request with :class:`HookTimeout` (HTTP 504);
a plain function cannot be stopped, it finishes in its thread, but the request no longer waits for it. Hooks have
their own few worker threads, so hung hooks cannot take the store's.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.to_thread

from claw.threadweaver.providers.model import Message

DEFAULT_TIMEOUT_S = 10.0
HOOK_THREADS = 8  # worker threads for hooks, apart from the store's: a hook that hangs holds one of these only
STAGES = ("pre_send", "on_chunk", "post_receive")
Outcome = Callable[[str, str, str], None]  # (hook, stage, outcome: passed/modified/blocked/failed)


class HookBlocked(Exception):
    code = "hook_blocked"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.hook: str | None = None
        super().__init__(reason)

    def __str__(self) -> str:
        where = f" by hook {self.hook}" if self.hook else ""
        return f"blocked{where}: {self.reason}"


class HookFailed(Exception):
    code = "hook_failed"

    def __init__(self, hook: str, stage: str, error: BaseException) -> None:
        self.hook = hook
        self.stage = stage
        super().__init__(f"hook {hook} failed in {stage}: {type(error).__name__}: {error}; fix or remove the hook file")


class HookTimeout(HookFailed):
    """A hook that did not return within the timeout: the request ends (HTTP 504)."""

    code = "hook_timeout"

    def __init__(self, hook: str, stage: str, timeout_s: float) -> None:
        self.hook = hook
        self.stage = stage
        self.timeout_s = timeout_s
        Exception.__init__(
            self, f"hook {hook} did not return within {timeout_s:g} s in {stage}; fix the hook or raise hook_timeout_s"
        )


class HookLoadError(Exception):
    pass


@dataclass
class HookContext:
    stage: str
    thread_id: str
    provider: str
    model: str
    messages: list[Message] = field(default_factory=list)
    text: str = ""
    chunk: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Hook:
    name: str
    module: ModuleType

    def function(self, stage: str) -> Callable[[HookContext], Any] | None:
        found = getattr(self.module, stage, None)
        return found if callable(found) else None


def load(directory: Path | None) -> list[Hook]:
    if directory is None or not directory.is_dir():
        return []
    hooks = []
    for path in sorted(directory.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"threadweaver_hook_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise HookLoadError(f"cannot load hook {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise HookLoadError(f"hook {path} does not load: {type(err).__name__}: {err}") from err
        hooks.append(Hook(path.name, module))
    return hooks


_TIMED_OUT = object()


def _in_own_loop(coroutine: Coroutine[Any, Any, Any], timeout_s: float) -> Any:
    """An ``async def`` hook's coroutine in an event loop of its own (in a worker thread), cancelled after
    ``timeout_s``; :data:`_TIMED_OUT` then."""

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coroutine, timeout_s)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11 (JetPack 6 runs 3.10)
            return _TIMED_OUT

    return asyncio.run(bounded())


class Hooks:
    def __init__(
        self,
        hooks: list[Hook] | None = None,
        on_outcome: Outcome | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.hooks = hooks or []
        self.on_outcome = on_outcome or (lambda hook, stage, outcome: None)
        self.timeout_s = timeout_s
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use, in the event loop

    @classmethod
    def from_directory(
        cls, directory: Path | None, on_outcome: Outcome | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Hooks:
        return cls(load(directory), on_outcome, timeout_s)

    async def _call(self, function: Callable[[HookContext], Any], context: HookContext) -> Any:
        """The hook's return value, or :data:`_TIMED_OUT`; never on the event loop, never longer than the timeout
        (waiting for one of the hooks' threads included)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(HOOK_THREADS)
        if inspect.iscoroutinefunction(function):
            returned: Any = function(context)  # only makes the coroutine: it runs in its own loop below
        else:
            returned = await self._in_thread(functools.partial(function, context))
        if asyncio.iscoroutine(returned):
            returned = await self._in_thread(functools.partial(_in_own_loop, returned, self.timeout_s))
        return returned

    async def _in_thread(self, call: Callable[[], Any]) -> Any:
        assert self._limiter is not None
        returned: Any = _TIMED_OUT
        with anyio.move_on_after(self.timeout_s):
            # abandon_on_cancel: at the timeout the request goes on (with the error); the thread finishes alone.
            returned = await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=self._limiter)
        return returned

    def has(self, stage: str) -> bool:
        return any(hook.function(stage) for hook in self.hooks)

    async def _run(self, stage: str, context: HookContext, field_name: str | None) -> None:
        for hook in self.hooks:
            function = hook.function(stage)
            if function is None:
                continue
            try:
                returned = await self._call(function, context)
            except HookBlocked as blocked:
                blocked.hook = hook.name
                self.on_outcome(hook.name, stage, "blocked")
                raise
            except Exception as err:
                self.on_outcome(hook.name, stage, "failed")
                raise HookFailed(hook.name, stage, err) from err
            if returned is _TIMED_OUT:
                self.on_outcome(hook.name, stage, "timeout")
                raise HookTimeout(hook.name, stage, self.timeout_s)
            if field_name and isinstance(returned, str) and returned != getattr(context, field_name):
                setattr(context, field_name, returned)
                self.on_outcome(hook.name, stage, "modified")
            else:
                self.on_outcome(hook.name, stage, "passed")

    async def pre_send(self, context: HookContext) -> None:
        await self._run("pre_send", context, None)

    async def on_chunk(self, context: HookContext) -> str:
        await self._run("on_chunk", context, "chunk")
        return context.chunk

    async def post_receive(self, context: HookContext) -> str:
        await self._run("post_receive", context, "text")
        return context.text


class ReplyFilter:
    """One reply through the hooks, streamed or whole, for the console and the gateway alike: ``on_chunk`` on
    every chunk, then ``post_receive`` over the whole text. Only what its methods return may be shown or stored;
    the provider's raw text stays in here."""

    def __init__(self, hooks: Hooks, context: HookContext) -> None:
        self.hooks = hooks
        self.context = context  # thread, provider, model, the messages sent, metadata
        self.hold_back = hooks.has("post_receive")
        self._check_chunks = hooks.has("on_chunk")
        self._text: list[str] = []  # after on_chunk

    def _for(self, stage: str, **fields: Any) -> HookContext:
        base = self.context
        return HookContext(
            stage, base.thread_id, base.provider, base.model, base.messages, metadata=base.metadata, **fields
        )

    async def chunk(self, text: str) -> str:
        """The chunk as it may be shown and stored now: through ``on_chunk``; ``""`` while held back."""
        if text and self._check_chunks:
            text = await self.hooks.on_chunk(self._for("on_chunk", chunk=text))
        self._text.append(text)
        return "" if self.hold_back else text

    async def finish(self) -> str:
        """The whole reply (or what arrived of it) as it may be shown and stored: through ``post_receive``.
        Without such hooks, the chunks already returned, joined."""
        text = "".join(self._text)
        if not self.hold_back:
            return text
        return await self.hooks.post_receive(self._for("post_receive", text=text))

    async def whole(self, text: str) -> str:
        """A reply that is not streamed: one chunk, then the whole."""
        await self.chunk(text)
        return await self.finish()
