"""The `swarm` MCP server: the supervisor agent's only powers over the worker gateways (issue #18, docs/swarm.md).

List the declared workers, one worker's status, its last journal lines, the supervisor's incidents (read-only),
restart a worker, change a worker's model limits within the operator's bounds. Nothing else: the workers come from
the supervisor's own settings (``swarm_config``, /etc/claw/swarm.yml), and a tool acts on a unit only when the name
it is given is exactly a declared worker's name or exactly its unit ``openclaw-worker@<name>.service``; any other
string (another unit, a second unit after a space, a path, ``..``, another template) is refused before a process
starts. Units are driven through the supervisor's own :class:`claw.swarm.units.UnitManager` (systemd in service,
a local stand-in in tests); the privilege is the polkit rule that names the worker units, never root.

Limits are written to an override file ThreadWeaver's gateway reads (:mod:`claw.swarm.limits`).

Run it with ``claw mcp swarm --stdio`` or as part of ``claw mcp serve``; over HTTP only clients whose allow-list
names ``swarm`` reach it.
"""

import logging
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from claw.mcp.registry import ConfigError
from claw.mcp.runtime import CURRENT_CLIENT, READ_ONLY, UPDATE, tool_errors
from claw.mcp.units import MAX_LINE_CHARS, MAX_LOG_LINES
from claw.swarm import config as swarm_config
from claw.swarm.limits import Bounds, LimitsError, LimitsFile, client_name
from claw.swarm.store import IncidentStore, StoreError
from claw.swarm.units import SystemdUnits, UnitError, UnitManager

SERVER_NAME = "swarm"
MAX_INCIDENTS = 100
log = logging.getLogger("claw.mcp.swarm")

# A restart interrupts the worker (destructive) and each call does it again (not idempotent).
RESTART = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


class Settings(BaseModel):
    """The swarm server's settings (section ``swarm`` of the MCP configuration)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(None, gt=0, lt=65536, description="Loopback port over HTTP (required there)")
    swarm_config: Path = Field(Path("/etc/claw/swarm.yml"), description="The supervisor's settings: workers, store")
    limits_file: Path = Field(
        Path("/var/lib/claw-swarm/worker-limits.json"), description="The override file ThreadWeaver's gateway reads"
    )
    bounds: Bounds = Bounds()
    command_timeout_seconds: float = Field(15.0, gt=0, le=120)


class WorkerInfo(BaseModel):
    name: str
    unit: str
    health_url: str


class WorkerStatus(BaseModel):
    name: str
    unit: str
    active_state: str = Field(description="systemd's ActiveState: active, activating, failed, inactive ...")
    sub_state: str
    main_pid: int | None
    running: bool
    error: str | None = Field(None, description="Why the state could not be read")
    limits: dict[str, float | int] = Field(description="Limits set through set_worker_limits (others: configured)")
    recent_incidents: int = Field(description="Incidents recorded for this worker (the newest 100 counted)")


class WorkerList(BaseModel):
    workers: list[WorkerStatus]


class WorkerLogs(BaseModel):
    worker: str
    unit: str
    lines: list[str] = Field(description="The newest journal lines, oldest first")


class IncidentInfo(BaseModel):
    id: int
    at: str
    worker: str
    kind: str
    symptom: str
    action: str
    logs: list[str]


class IncidentList(BaseModel):
    incidents: list[IncidentInfo]


class RestartReport(BaseModel):
    worker: str
    unit: str
    restarted: bool
    status: WorkerStatus


class LimitsReport(BaseModel):
    worker: str
    gateway_client: str
    limits: dict[str, float | int] = Field(description="The worker's overridden limits after the change")
    file: str = Field(description="The override file ThreadWeaver's gateway reads")


class _Swarm:
    """The declared workers and what the tools do with them (blocking calls run in worker threads)."""

    def __init__(self, settings: Settings, swarm: swarm_config.SwarmSettings, units: UnitManager) -> None:
        self.settings = settings
        self.swarm = swarm
        self.units = units
        self.limits = LimitsFile(settings.limits_file, settings.bounds)

    def worker(self, given: str) -> swarm_config.WorkerSettings:
        try:
            return self.swarm.worker(given)
        except ValueError as err:
            raise UnitError(str(err)) from None

    def _store(self) -> IncidentStore:
        return IncidentStore(self.swarm.store.path, read_only=True)

    def incidents(self, *, text: str = "", worker: str | None = None, limit: int = 20) -> list[IncidentInfo]:
        if not self.swarm.store.path.exists():
            return []  # the supervisor has recorded nothing yet
        store = self._store()
        try:
            found = store.search(text, limit=limit) if text.strip() else store.recent(worker=worker, limit=limit)
        finally:
            store.close()
        return [IncidentInfo(**incident.as_dict()) for incident in found]  # type: ignore[arg-type]

    async def status(self, worker: swarm_config.WorkerSettings) -> WorkerStatus:
        error = None
        try:
            state = await self.units.status(worker.unit)
            active, sub, pid, running = state.active_state, state.sub_state, state.main_pid, state.active
        except UnitError as err:
            active, sub, pid, running, error = "unknown", "", 0, False, str(err)
        limits = await anyio.to_thread.run_sync(self.limits.limits, worker.name)
        count = len(await anyio.to_thread.run_sync(lambda: self.incidents(worker=worker.name, limit=MAX_INCIDENTS)))
        return WorkerStatus(
            name=worker.name,
            unit=worker.unit,
            active_state=active,
            sub_state=sub,
            main_pid=pid or None,
            running=running,
            error=error,
            limits=limits,
            recent_incidents=count,
        )


def _caller() -> str:
    return CURRENT_CLIENT.get() or "a local (stdio) user"


def build_server(settings: Settings, swarm: swarm_config.SwarmSettings, units: UnitManager) -> MCPServer:
    """Create the `swarm` server over ``swarm``'s workers; tests pass a local :class:`UnitManager`."""
    state = _Swarm(settings, swarm, units)
    names = ", ".join(w.name for w in swarm.workers)
    server = MCPServer(
        SERVER_NAME,
        instructions=(
            f"The swarm's worker agents ({names}): their status, journal and incidents; restart one or change its "
            "spend cap, output-token and history-turn limits within the operator's bounds. Name a worker by its "
            "name; nothing but these workers can be touched."
        ),
    )
    worker_arg = Annotated[str, Field(max_length=256, description=f"A worker's name, one of: {names}")]
    bounds = settings.bounds

    @server.tool(annotations=READ_ONLY)
    async def list_workers() -> WorkerList:
        """Every declared worker with its unit state, its overridden limits and how many incidents it had."""
        with tool_errors(LimitsError, StoreError):
            return WorkerList(workers=[await state.status(worker) for worker in swarm.workers])

    @server.tool(annotations=READ_ONLY)
    async def worker_status(worker: worker_arg) -> WorkerStatus:
        """One worker's unit state (active, running, main PID), limits and incident count."""
        with tool_errors(UnitError, LimitsError, StoreError):
            return await state.status(state.worker(worker))

    @server.tool(annotations=READ_ONLY)
    async def tail_logs(
        worker: worker_arg,
        lines: Annotated[int, Field(ge=1, le=MAX_LOG_LINES, description=f"1 to {MAX_LOG_LINES}")] = 50,
    ) -> WorkerLogs:
        """The newest journal lines of one worker's unit, oldest first."""
        with tool_errors(UnitError):
            found = state.worker(worker)
            got = await state.units.logs(found.unit, lines)
            clipped = [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…" for line in got]
            return WorkerLogs(worker=found.name, unit=found.unit, lines=clipped[-lines:])

    @server.tool(annotations=READ_ONLY)
    async def search_incidents(
        text: Annotated[
            str, Field(max_length=200, description="Words that must all occur (worker, symptom, action, log lines)")
        ] = "",
        worker: Annotated[str, Field(max_length=256, description="Only this worker's incidents (without text)")] = "",
        limit: Annotated[int, Field(ge=1, le=MAX_INCIDENTS)] = 20,
    ) -> IncidentList:
        """The supervisor's recorded incidents (hangs, crashes, restarts), newest first; search or list."""
        with tool_errors(UnitError, StoreError, ValueError):
            name = state.worker(worker).name if worker else None
            found = await anyio.to_thread.run_sync(lambda: state.incidents(text=text, worker=name, limit=limit))
            return IncidentList(incidents=found)

    @server.tool(annotations=RESTART)
    async def restart_worker(worker: worker_arg) -> RestartReport:
        """Kill and restart one worker's unit, then report its state. Interrupts the worker's current turn."""
        with tool_errors(UnitError, LimitsError, StoreError):
            found = state.worker(worker)
            log.warning("%s restarts %s", _caller(), found.unit)
            await state.units.restart(found.unit)  # each systemctl call is bounded by command_timeout_seconds
            return RestartReport(worker=found.name, unit=found.unit, restarted=True, status=await state.status(found))

    @server.tool(annotations=UPDATE)
    async def set_worker_limits(
        worker: worker_arg,
        cap_usd: Annotated[
            float | None,
            Field(description=f"Spend cap in USD, {bounds.cap_usd.min:g} to {bounds.cap_usd.max:g}; omit: unchanged"),
        ] = None,
        max_output_tokens: Annotated[
            int | None,
            Field(
                description=f"Most tokens per reply, {bounds.max_output_tokens.min} to {bounds.max_output_tokens.max}"
            ),
        ] = None,
        max_history_turns: Annotated[
            int | None,
            Field(description=f"Newest turns sent, {bounds.max_history_turns.min} to {bounds.max_history_turns.max}"),
        ] = None,
    ) -> LimitsReport:
        """Change a worker's limits within the operator's bounds; ThreadWeaver's gateway enforces them."""
        with tool_errors(UnitError, LimitsError):
            found = state.worker(worker)
            given = {"cap_usd": cap_usd, "max_output_tokens": max_output_tokens, "max_history_turns": max_history_turns}
            changes = {key: value for key, value in given.items() if value is not None}
            merged = await anyio.to_thread.run_sync(state.limits.set, found.name, changes)
            log.warning("%s set the limits of %s: %s", _caller(), found.name, changes)
            return LimitsReport(
                worker=found.name, gateway_client=client_name(found.name), limits=merged, file=str(settings.limits_file)
            )

    return server


def load_swarm(settings: Settings) -> "swarm_config.SwarmSettings":
    """The supervisor's workers, each of which must be an instance of the worker template (nothing else is
    managed here)."""
    try:
        swarm = swarm_config.load(settings.swarm_config)
    except ValueError as err:
        raise ConfigError(f"server swarm: {err}") from None
    for worker in swarm.workers:
        expected = swarm_config.WORKER_UNIT.format(name=worker.name)
        if worker.unit != expected:
            raise ConfigError(f"server swarm: worker {worker.name}'s unit is {worker.unit}; only {expected} is managed")
    return swarm


def create(settings: Settings) -> MCPServer:
    return build_server(settings, load_swarm(settings), SystemdUnits(timeout=settings.command_timeout_seconds))
