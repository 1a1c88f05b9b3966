"""The `crush` MCP server: the inference node's models, engine health and GPU/power/thermal state.

Engine calls go through :class:`claw.engine.client.EngineClient` (Ollama or llama.cpp), the node's sensors through
its Prometheus exporter. Every failure is a :class:`claw.engine.errors.CrushError` whose one-line message (crush
unreachable, model missing with the ones available, out of memory with the amounts, ...) reaches the model as a
tool error. Reading is read-only and stays on the LAN; pull_model changes the node and downloads from the Ollama
library on the internet (open world); unload_model only frees memory, which the next request refills.

Run it with ``claw mcp crush --stdio --set engine_url=http://crush:11434`` (add ``--set exporter_url=URL`` of the
crush exporter's /metrics for gpu_summary) or as part of ``claw mcp serve``, whose config names both.
"""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from claw.crush.metrics_summary import GpuSummary, fetch_summary
from claw.engine.client import EngineClient
from claw.engine.errors import CrushError
from claw.engine.models import EngineHealth, LoadedModel, ModelInfo, PullProgress, PullResult, UnloadResult
from claw.mcp.runtime import READ_ONLY, tool_errors

SERVER_NAME = "crush"

PULL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
UNLOAD = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

INSTRUCTIONS = (
    "The crush node runs the appliance's language models (Ollama or llama.cpp) on a Jetson GPU. "
    "engine_health says whether the engine answers; list_models and loaded_models name the models; "
    "gpu_summary reports GPU load, memory, power and temperatures. Errors name the cause and the fix."
)

ModelArg = Annotated[
    str,
    Field(min_length=1, max_length=256, description="Model name as list_models shows it, e.g. 'qwen3:4b'"),
]


class ModelList(BaseModel):
    engine: str = Field(description="ollama or llamacpp")
    models: list[ModelInfo]


class LoadedList(BaseModel):
    engine: str
    models: list[LoadedModel]


def build_server(
    client: EngineClient, exporter_url: str | None = None, *, allow_pull: bool = True, exporter_timeout: float = 5.0
) -> MCPServer:
    """Create the `crush` server on one engine client (tests pass one aimed at a fake engine)."""
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS)

    @server.tool(annotations=READ_ONLY)
    async def engine_health() -> EngineHealth:
        """Check whether the crush inference engine answers: engine kind, version, latency, or why it does not."""
        return await client.health()

    @server.tool(annotations=READ_ONLY)
    async def list_models() -> ModelList:
        """List the models the crush engine can serve, with size, family and quantisation where known."""
        with tool_errors(CrushError):
            models = await client.list_models()
            return ModelList(engine=await client.engine(), models=models)

    @server.tool(annotations=READ_ONLY)
    async def loaded_models() -> LoadedList:
        """List the models loaded in memory now, with their RAM/GPU memory and context length where known."""
        with tool_errors(CrushError):
            models = await client.loaded_models()
            return LoadedList(engine=await client.engine(), models=models)

    @server.tool(annotations=UNLOAD)
    async def unload_model(model: ModelArg) -> UnloadResult:
        """Unload a model from the crush node's memory (Ollama only). Safe to repeat; it reloads when next used."""
        with tool_errors(CrushError):
            return await client.unload_model(model)

    if allow_pull:

        @server.tool(annotations=PULL)
        async def pull_model(model: ModelArg, ctx: Context) -> PullResult:
            """Download a model from the Ollama library onto the crush node (Ollama only; may take minutes).
            Progress is reported in bytes. Pulling a model that is already there only checks it."""
            last: list[int] = []

            async def report(progress: PullProgress) -> None:
                # MCP progress must increase, so only growth in downloaded bytes is reported.
                if last and progress.overall_completed <= last[-1]:
                    return
                last.append(progress.overall_completed)
                await ctx.report_progress(progress.overall_completed, progress.overall_total or None, progress.status)

            with tool_errors(CrushError):
                return await client.pull_model(model, report)

    if exporter_url is not None:

        @server.tool(annotations=READ_ONLY)
        async def gpu_summary() -> GpuSummary:
            """Report the crush node's GPU load and clock, RAM, power rails in watts, temperatures and thermal
            throttling. Sensors the node could not read are listed as unavailable and left null, not zero."""
            with tool_errors(CrushError):
                return await fetch_summary(exporter_url, exporter_timeout)

    return server


def _http_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.split("/", 1)[0]:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Settings(BaseModel):
    """The crush server's settings (section ``crush`` of /etc/claw/mcp.yml)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, gt=0, lt=65536, description="Loopback port over HTTP (required there); unused over stdio"
    )
    engine_url: HttpUrl = Field("http://crush:8080", description="Base URL of the engine (Ollama: port 11434)")
    engine: Literal["auto", "ollama", "llamacpp"] = "auto"
    exporter_url: HttpUrl | None = Field(
        None, description="The crush exporter's metrics (the rendered config names it); unset leaves out gpu_summary"
    )
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Per request; a pull waits this long per line")
    allow_pull: bool = True


def create(settings: Settings) -> MCPServer:
    client = EngineClient(settings.engine_url, settings.engine, settings.timeout_seconds)
    return build_server(
        client, settings.exporter_url, allow_pull=settings.allow_pull, exporter_timeout=settings.timeout_seconds
    )
