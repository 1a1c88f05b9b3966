"""The `leds` MCP server: let a model colour the appliance's 8-pixel Blinkt! strip through the LED daemon.

The server never touches GPIO: every tool is one request to the daemon (:mod:`claw.leds.daemon`) over its unix
socket. What a model sets lives on the daemon's ``manual`` layer (``pulse``/``alert`` for the short animations),
below the appliance's own status signals, so a model can never hide a real alert. A missing daemon or a refused
request comes back as a tool error (``isError: true``) whose one line names the socket or the daemon's reason.

Run it with ``claw mcp leds --stdio`` or as part of ``claw mcp serve``.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict, Field

from claw.leds.client import LedClient, LedDaemonUnavailable, LedRequestError
from claw.leds.protocol import DEFAULT_SOCKET
from claw.leds.state import COLORS, DEFAULT_BRIGHTNESS, NUM_PIXELS, Level
from claw.mcp.runtime import CREATE, READ_ONLY, UPDATE, tool_errors

SERVER_NAME = "leds"
# Setting the same colour, progress, pattern or clear twice leaves the same lights: idempotent, not destructive.
SETS_LIGHTS = CREATE
# A pulse or flash starts a new animation on every call.
ANIMATES = UPDATE
DAEMON_ERRORS = (LedDaemonUnavailable, LedRequestError)

INSTRUCTIONS = (
    f"A strip of {NUM_PIXELS} RGB LEDs on the appliance, pixels 0 (left) to {NUM_PIXELS - 1} (right). "
    f"Colours are names ({', '.join(COLORS)}) or '#rrggbb'. The appliance's own status lights (alerts, activity) "
    "always show above what you set; every tool answers with what the strip shows now."
)

COLOR_HELP = f"A colour name ({', '.join(COLORS)}) or '#rrggbb', e.g. 'blue' or '#ff8800'"
ColorArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=16,
        pattern=r"^(#[0-9A-Fa-f]{6}|[A-Za-z_]+)$",
        description=COLOR_HELP,
    ),
]
PixelArg = Annotated[int, Field(ge=0, le=NUM_PIXELS - 1)]
BrightnessArg = Annotated[
    float, Field(ge=0.0, le=1.0, description="0.0 is off, 1.0 is glaring; 0.2 is comfortable indoors")
]


class PixelState(BaseModel):
    color: str = Field(description="'#rrggbb'; '#000000' when the pixel is off")
    brightness: float = Field(description="0.0 (off) to 1.0")


class LayerState(BaseModel):
    level: str = Field(description="alert > pulse > activity > manual > idle; the highest level is shown")
    name: str = Field(description="The state or pattern, e.g. service_down, progress, rainbow")
    source: str | None = Field(description="The status source that set it; null when a tool set it")
    pattern: str
    color: str
    expires_in_s: float | None = Field(description="Seconds until it goes away by itself; null: stays")
    detail: str


class LedReport(BaseModel):
    shown: str = Field(description="What the strip shows now, in words")
    note: str | None = Field(None, description="Set when your change is hidden below a higher layer")
    pixels: list[PixelState] = Field(description=f"The {NUM_PIXELS} pixels, left to right, at this moment")
    layers: list[LayerState] = Field(description="Everything set now, the shown layer first")
    backend: str = Field(description="blinkt (the real strip) or simulated")


def _layer(raw: dict[str, Any]) -> LayerState:
    return LayerState(
        level=raw["level"],
        name=raw["state"] or raw["key"],
        source=raw["source"],
        pattern=raw["pattern"],
        color=raw["color"],
        expires_in_s=raw["expires_in"],
        detail=raw["detail"],
    )


def _report(answer: dict[str, Any], changed: Level | None = None) -> LedReport:
    layers = [_layer(raw) for raw in answer["layers"]]
    top = layers[0] if layers else None
    if top is None:
        shown = "nothing: the strip is off"
    else:
        origin = f" from {top.source}" if top.source else ""
        detail = f" ({top.detail})" if top.detail else ""
        shown = f"{top.level} layer: {top.name}{origin}{detail}, {top.pattern} {top.color}"
    note = None
    if changed is not None and top is not None and Level[top.level.upper()] > changed:
        note = f"your change is set but hidden while the {top.level} layer '{top.name}' is shown"
    pixels = [PixelState(color="#{:02x}{:02x}{:02x}".format(*p[:3]), brightness=p[3]) for p in answer["pixels"]]
    return LedReport(shown=shown, note=note, pixels=pixels, layers=layers, backend=answer["backend"])


def build_server(client: LedClient) -> MCPServer:
    """Create the `leds` server talking to one daemon (tests pass a client for a daemon on a temporary socket)."""
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS)

    @server.tool(annotations=SETS_LIGHTS)
    async def set_color(
        color: ColorArg,
        first: Annotated[PixelArg, Field(description="First pixel to colour, 0 is the leftmost")] = 0,
        last: Annotated[PixelArg, Field(description="Last pixel to colour (inclusive), 7 is the rightmost")] = 7,
        brightness: BrightnessArg = DEFAULT_BRIGHTNESS,
    ) -> LedReport:
        """Light pixels first..last in one steady colour; other pixels keep theirs. Use color 'off' to darken."""
        with tool_errors(*DAEMON_ERRORS):
            answer = await client.set_color(color, first=first, last=last, brightness=brightness)
            return _report(answer, Level.MANUAL)

    @server.tool(annotations=SETS_LIGHTS)
    async def set_progress(
        percent: Annotated[float, Field(ge=0, le=100, description="Progress from 0 to 100; 100 lights all 8")],
        color: ColorArg = "green",
    ) -> LedReport:
        """Show progress as a bar filling from the left: each pixel is one eighth (12.5%) of the work."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.progress(percent, color=color), Level.MANUAL)

    @server.tool(annotations=ANIMATES)
    async def pulse_success() -> LedReport:
        """Swell the strip green twice (1.5 s) to say a task succeeded, then go back to what was shown."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.pulse("success"), Level.PULSE)

    @server.tool(annotations=ANIMATES)
    async def pulse_error() -> LedReport:
        """Swell the strip red twice (1.5 s) to say a task failed, then go back to what was shown."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.pulse("error"), Level.PULSE)

    @server.tool(annotations=ANIMATES)
    async def flash_alert(
        color: ColorArg = "red",
        seconds: Annotated[float, Field(ge=1, le=300, description="How long to blink, 1 to 300 seconds")] = 10,
    ) -> LedReport:
        """Blink the whole strip to get a person's attention for a while; it stops by itself."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.flash(color=color, seconds=seconds), Level.ALERT)

    @server.tool(annotations=SETS_LIGHTS)
    async def show_pattern(
        name: Annotated[
            Literal["rainbow", "scanner", "breathe", "heartbeat", "blink"],
            Field(
                description="rainbow: moving colours; scanner: a light sweeping left-right; "
                "breathe: slow fade in and out; heartbeat: double beat; blink: on/off twice a second"
            ),
        ],
        color: Annotated[ColorArg | None, Field(description=f"{COLOR_HELP}; omit for the pattern's own")] = None,
        seconds: Annotated[
            float | None, Field(gt=0, le=86400, description="Stop after this many seconds; omit to keep it on")
        ] = None,
    ) -> LedReport:
        """Play an animated pattern on the whole strip until cleared, replaced, or the given seconds pass."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.pattern(name, color=color, ttl=seconds), Level.MANUAL)

    @server.tool(annotations=SETS_LIGHTS)
    async def clear() -> LedReport:
        """Turn off everything set with these tools (colours, progress, patterns, pulses, flashes).

        The appliance's status lights stay: they go away when their cause does."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.clear())

    @server.tool(annotations=READ_ONLY)
    async def get_state() -> LedReport:
        """Tell what the strip shows now, pixel by pixel, and every layer behind it. Takes no arguments."""
        with tool_errors(*DAEMON_ERRORS):
            return _report(await client.get())

    return server


class Settings(BaseModel):
    """The leds server's settings (section ``leds`` of /etc/claw/mcp.yml)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, gt=0, lt=65536, description="Loopback port over HTTP (required there); unused over stdio"
    )
    socket: Path = Field(DEFAULT_SOCKET, description="The LED daemon's unix socket")
    timeout: float = Field(5.0, gt=0, le=60, description="Seconds to wait for the daemon")


def create(settings: Settings) -> MCPServer:
    # The daemon may start after this process: a missing socket is reported per call, not refused here.
    return build_server(LedClient(settings.socket, timeout=settings.timeout))
