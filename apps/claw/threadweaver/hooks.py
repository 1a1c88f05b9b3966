"""The operator's hooks: Python files in a directory, each defining any of ``pre_send(context)``,
``on_chunk(context)`` and ``post_receive(context)``.

* ``pre_send`` sees ``context.messages`` (what will be sent) and may change them in place or block.
* ``on_chunk`` sees each streamed ``context.chunk``; it may return a replacement text or block.
* ``post_receive`` sees the whole ``context.text`` before the user does; it may return a redacted text or block.

Blocking is ``raise HookBlocked("reason")``. Any other exception is a failing hook: the turn stops with
:class:`HookFailed`, whose message names the file, the function and the error (the console stores it in the
thread as a note; the user's message is already stored).

Streaming with hooks: every chunk passes the ``on_chunk`` hooks before it is sent on. When any ``post_receive``
hook exists, nothing is streamed to the user until the reply is complete and has passed them (the user then gets
the checked text in one piece), because a redaction or a block must happen before the user sees the text.
Files are loaded in name order, once, at start. A hook that is a plain function runs in a worker thread (it may
block: a file, a slow pattern), an ``async def`` one on the event loop.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from claw.threadweaver.blocking import in_thread
from claw.threadweaver.providers.model import Message

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


class Hooks:
    def __init__(self, hooks: list[Hook] | None = None, on_outcome: Outcome | None = None) -> None:
        self.hooks = hooks or []
        self.on_outcome = on_outcome or (lambda hook, stage, outcome: None)

    @classmethod
    def from_directory(cls, directory: Path | None, on_outcome: Outcome | None = None) -> Hooks:
        return cls(load(directory), on_outcome)

    def has(self, stage: str) -> bool:
        return any(hook.function(stage) for hook in self.hooks)

    async def _run(self, stage: str, context: HookContext, field_name: str | None) -> None:
        for hook in self.hooks:
            function = hook.function(stage)
            if function is None:
                continue
            try:
                # A plain function may block (a file, a regex over a long text): it runs in a worker thread.
                if inspect.iscoroutinefunction(function):
                    returned = function(context)
                else:
                    returned = await in_thread(function, context)
                if inspect.isawaitable(returned):
                    returned = await returned
            except HookBlocked as blocked:
                blocked.hook = hook.name
                self.on_outcome(hook.name, stage, "blocked")
                raise
            except Exception as err:
                self.on_outcome(hook.name, stage, "failed")
                raise HookFailed(hook.name, stage, err) from err
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
