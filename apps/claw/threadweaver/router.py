"""A thread's provider: the one it chose, and its fallback, used only when the chosen one is unreachable or down.

Spend caps are checked for each provider before its request is sent: the request's worst case is reserved against
them (:meth:`Router.reserve`, kept in a :class:`Hold` until the reply is stored); a capped chosen provider is
refused (the fallback is for outages, not for getting round a cap); a capped fallback is skipped and the outage
reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from claw.threadweaver.blocking import in_thread, in_thread_shielded
from claw.threadweaver.governance import Attribution, Governance, Reservation, SpendCapReached
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


@dataclass
class Hold:
    """The request under way: its route, the request as sent (model and output limit filled in), its reservation
    against the caps, and whether it was sent. The caller releases it once the reply's usage is recorded (in the
    same transaction: :meth:`.governance.Governance.settling`). ``attribution``: where a thread's reply is stored,
    kept with every reservation the hold takes (for :meth:`.governance.Governance.recover`)."""

    route: Route | None = None
    request: Request | None = None
    reservation: Reservation | None = None
    sent: bool = False
    attribution: Attribution | None = None

    def release(self) -> None:
        """Blocking when its reservation is still open in the ledger (nothing was recorded): see :meth:`arelease`."""
        if self.reservation is not None:
            self.reservation.release()
        self.route, self.request, self.reservation, self.sent = None, None, None, False

    async def arelease(self) -> None:
        """:meth:`release` from the event loop: a reservation still open in the ledger is closed in a worker
        thread, to the end even when the caller is being cancelled."""
        if self.reservation is not None and self.reservation.row is not None:
            await in_thread_shielded(self.release)
        else:
            self.release()


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

    async def reserve(
        self, route: Route, request: Request, hold: Hold, *, first: Callable[[], None] | None = None, **who: Any
    ) -> None:
        """Reserve ``request``'s worst case on ``route`` (``who``: ``thread=``, or ``client=`` with ``client_cap=``
        and ``client_cap_tokens=``) and keep it in ``hold`` (releasing what it held); raises
        :class:`SpendCapReached` and holds nothing then.
        ``first``: a blocking check run just before, in the same worker thread (one trip off the event loop, not
        two); what it raises is raised, nothing held."""
        self.validate(route.provider)
        hold.release()
        limit = self.providers[route.provider].output_limit(request.max_output_tokens)
        bounded = dataclasses.replace(request, model=route.model, max_output_tokens=limit)

        def reserve() -> Reservation:
            if first is not None:
                first()
            return self.governance.reserve(route.provider, route.model, bounded, attribution=hold.attribution, **who)

        reservation = await in_thread(reserve)
        hold.route, hold.request, hold.reservation = route, reservation.request, reservation

    async def _usable(self, thread: Thread, route: Route, first: bool, request: Request, hold: Hold) -> bool:
        if hold.route == route and hold.reservation is not None:
            return True  # reserved by the caller already
        try:
            await self.reserve(route, request, hold, thread=thread)
        except SpendCapReached:
            if first:
                raise
            return False
        return True

    async def complete(self, thread: Thread, request: Request, hold: Hold | None = None) -> tuple[Route, Result]:
        """``hold``: the caller's, released by the caller once the usage is recorded; none: released on return."""
        mine = Hold() if hold is None else hold
        try:
            outage: ProviderError | None = None
            for n, route in enumerate(self.routes(thread)):
                if not await self._usable(thread, route, n == 0, request, mine):
                    continue
                assert mine.request is not None
                mine.sent = True
                try:
                    return route, await self.providers[route.provider].complete(mine.request)
                except FALLBACK_ON as err:
                    await mine.arelease()  # an outage costs nothing
                    outage = err
            assert outage is not None
            raise outage
        finally:
            if hold is None:
                await mine.arelease()

    async def stream(
        self, thread: Thread, request: Request, hold: Hold | None = None
    ) -> AsyncIterator[tuple[Route, Chunk]]:
        """Chunks with the route that made them; the fallback is tried only if nothing was streamed yet."""
        mine = Hold() if hold is None else hold
        try:
            outage: ProviderError | None = None
            for n, route in enumerate(self.routes(thread)):
                if not await self._usable(thread, route, n == 0, request, mine):
                    continue
                assert mine.request is not None
                mine.sent = True
                started = False
                try:
                    async for chunk in self.providers[route.provider].stream(mine.request):
                        started = True
                        yield route, chunk
                    return
                except FALLBACK_ON as err:
                    if started:
                        raise
                    await mine.arelease()
                    outage = err
            assert outage is not None
            raise outage
        finally:
            if hold is None:
                await mine.arelease()
