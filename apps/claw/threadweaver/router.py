"""A thread's provider: the one it chose, and its fallback, used only when the chosen one is unreachable or down.

Spend caps are checked for each provider before its request is sent; a capped chosen provider is refused (the
fallback is for outages, not for getting round a cap); a capped fallback is skipped and the outage reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from claw.threadweaver.blocking import in_thread
from claw.threadweaver.governance import Governance, SpendCapReached
from claw.threadweaver.providers import Provider
from claw.threadweaver.providers.errors import FALLBACK_ON, ProviderError
from claw.threadweaver.providers.model import Chunk, Request, Result
from claw.threadweaver.store import Thread


class UnknownProvider(ValueError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"unknown provider {name!r}; configured: {', '.join(known) or 'none'}")


@dataclass(frozen=True)
class Route:
    provider: str
    model: str


class Router:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        governance: Governance,
        models: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.governance = governance
        self.models = {name: list(names) for name, names in (models or {}).items()}

    def catalog(self) -> list[dict[str, Any]]:
        """The configured providers for a picker: name, adapter kind, and the models offered (may be empty)."""
        return [
            {"name": name, "kind": provider.kind, "models": self.models.get(name, [])}
            for name, provider in sorted(self.providers.items())
        ]

    def validate(self, name: str | None) -> None:
        if name is not None and name not in self.providers:
            raise UnknownProvider(name, sorted(self.providers))

    def routes(self, thread: Thread) -> list[Route]:
        routes = [Route(thread.provider, thread.model)]
        if thread.fallback_provider:
            routes.append(Route(thread.fallback_provider, thread.fallback_model or thread.model))
        return routes

    async def _usable(self, thread: Thread, route: Route, first: bool) -> bool:
        self.validate(route.provider)
        try:
            await in_thread(self.governance.check, thread, route.provider)
        except SpendCapReached:
            if first:
                raise
            return False
        return True

    async def complete(self, thread: Thread, request: Request) -> tuple[Route, Result]:
        outage: ProviderError | None = None
        for n, route in enumerate(self.routes(thread)):
            if not await self._usable(thread, route, n == 0):
                continue
            try:
                return route, await self.providers[route.provider].complete(
                    dataclasses.replace(request, model=route.model)
                )
            except FALLBACK_ON as err:
                outage = err
        assert outage is not None
        raise outage

    async def stream(self, thread: Thread, request: Request) -> AsyncIterator[tuple[Route, Chunk]]:
        """Chunks with the route that made them; the fallback is tried only if nothing was streamed yet."""
        outage: ProviderError | None = None
        for n, route in enumerate(self.routes(thread)):
            if not await self._usable(thread, route, n == 0):
                continue
            started = False
            try:
                async for chunk in self.providers[route.provider].stream(
                    dataclasses.replace(request, model=route.model)
                ):
                    started = True
                    yield route, chunk
                return
            except FALLBACK_ON as err:
                if started:
                    raise
                outage = err
        assert outage is not None
        raise outage
