"""The `time` MCP server: the current time in any zone, weekdays, countdowns, durations, and reminders.

Zones are IANA names checked with :mod:`zoneinfo`; a bad zone or date comes back as a tool error naming the bad
value. Reminders live in SQLite (:mod:`claw.mcp.reminders`) and a scheduler task started from the server's
lifespan fires them, catching up at startup on the ones that fell due while the process was down.

Run it with ``claw mcp time --stdio`` or as part of ``claw mcp serve``.
"""

import functools
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from claw.mcp.client import read_key
from claw.mcp.registry import ConfigError
from claw.mcp.reminders import (
    Clock,
    ConsoleNotice,
    Deliveries,
    LedSignal,
    Notify,
    Reminder,
    ReminderError,
    ReminderScheduler,
    ReminderStore,
)
from claw.mcp.runtime import CURRENT_CLIENT, OVERWRITE, READ_ONLY, UPDATE, tool_errors

SERVER_NAME = "time"
MAX_MESSAGE_CHARS = 500
MAX_AHEAD_SECONDS = 5 * 366 * 86400  # reminders up to five years ahead
MAX_DURATION_SECONDS = 100 * 366 * 86400
MAX_LISTED = 200
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


class TimeInputError(ValueError):
    """A zone, date or time the tools cannot use; the message names the bad value."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_duration(seconds: int, max_units: int = 4) -> str:
    """7500 -> '2 h 5 min'; the largest ``max_units`` non-zero units, smaller ones dropped."""
    rest, parts = abs(int(seconds)), []
    for name, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {name}")
    return " ".join(parts[:max_units]) or "0 s"


def relative(seconds: float) -> str:
    if abs(seconds) < 1:
        return "now"
    words = format_duration(round(seconds), max_units=2)
    return f"in {words}" if seconds > 0 else f"{words} ago"


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    hint = _zone_names().get(name.strip().lower())
    suggestion = f"; did you mean {hint!r}?" if hint else "; use an IANA name like 'Europe/Berlin' or 'UTC'"
    raise TimeInputError(f"unknown time zone {name!r}{suggestion}") from None


def local_zone_name(etc: Path = Path("/etc")) -> str:
    """The appliance's zone: $TZ, /etc/timezone (Debian), the /etc/localtime link, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with suppress(OSError):
        candidates.append((etc / "timezone").read_text(encoding="utf-8").strip())
    with suppress(OSError):
        candidates.append(str((etc / "localtime").readlink()).partition("zoneinfo/")[2])
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return "UTC"


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise TimeInputError(f"{text!r} is not a valid date; use YYYY-MM-DD, e.g. '2025-06-01'") from None


def parse_moment(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date or date-time; one without an offset is wall-clock time in ``zone`` (DST-aware)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            naive = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
            if parsed.tzinfo is not None:
                return parsed
            naive = parsed
    except ValueError:
        raise TimeInputError(
            f"{text!r} is not an ISO date or date-time; use e.g. '2025-06-01' or '2025-06-01T18:30'"
        ) from None
    moment = naive.replace(tzinfo=zone)
    # A wall time inside a spring-forward gap does not survive the trip through UTC.
    if moment.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != naive:
        raise TimeInputError(f"{raw} does not exist in {zone.key}: the clocks skip that hour for daylight saving")
    return moment


def _offset(moment: datetime) -> str:
    total = int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign, total = ("+" if total >= 0 else "-"), abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


# --- structured outputs -----------------------------------------------------------------------------------------


class CurrentTime(BaseModel):
    iso: str = Field(description="Local date and time with UTC offset, ISO 8601")
    zone: str
    utc_offset: str = Field(description="e.g. +02:00")
    abbreviation: str | None = Field(description="e.g. CEST")
    daylight_saving: bool
    day_of_week: str
    date: str
    time: str = Field(description="HH:MM:SS on a 24-hour clock")
    unix: int = Field(description="Seconds since 1970-01-01 UTC")


class DayOfWeek(BaseModel):
    date: str
    day_of_week: str
    iso_weekday: int = Field(description="1 = Monday ... 7 = Sunday")
    iso_week: int


class TimeUntil(BaseModel):
    target: str = Field(description="The target as ISO 8601 with its UTC offset")
    now: str
    seconds: int = Field(description="Seconds from now to the target; negative when it is in the past")
    in_words: str = Field(description="e.g. 'in 2 h 5 min' or '3 d 4 h ago'")
    past: bool


class Duration(BaseModel):
    seconds: int
    text: str = Field(description="e.g. '2 h 5 min'")


class ReminderInfo(BaseModel):
    id: int
    message: str
    status: Literal["pending", "fired", "cancelled"]
    due: str = Field(description="When it is due, ISO 8601 in the reminder's zone")
    zone: str
    due_in: str = Field(description="Relative to now, e.g. 'in 10 min' or '2 h ago'")
    created_at: str
    fired_at: str | None
    late: bool = Field(description="It fired well after its time (the appliance was off or busy)")
    cancelled_at: str | None
    owner: str | None = Field(None, description="The MCP client that set it (null: a local user)")


class ReminderList(BaseModel):
    reminders: list[ReminderInfo]
    total: int = Field(description="How many reminders have this status; at most 'limit' are listed")


# --- the server -------------------------------------------------------------------------------------------------


def build_server(
    store: ReminderStore,
    *,
    zone: str = "UTC",
    clock: Clock = utc_now,
    scheduler: ReminderScheduler | None = None,
) -> MCPServer:
    """Create the `time` server; tests inject the store, the clock and a scheduler they can drive."""
    default_zone = load_zone(zone)
    scheduler = scheduler or ReminderScheduler(store, clock)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        await scheduler.startup()  # reminders due while the process was down fire now, flagged late
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(scheduler.run)
            try:
                yield {}
            finally:
                tasks.cancel_scope.cancel()

    server = MCPServer(
        SERVER_NAME,
        instructions=(
            f"Clock, calendar and reminders. The appliance's time zone is {default_zone.key}; zones are IANA names "
            "like 'Europe/Berlin'. Dates are YYYY-MM-DD, times ISO 8601 like '2025-06-01T18:30'."
        ),
        lifespan=lifespan,
    )
    zone_arg = Annotated[
        str,
        Field(
            max_length=64,
            description=f"IANA time zone, e.g. 'Europe/Berlin', 'America/New_York' or 'UTC'; '' = {default_zone.key}",
        ),
    ]

    def pick_zone(name: str) -> ZoneInfo:
        return load_zone(name.strip()) if name.strip() else default_zone

    def info(reminder: Reminder, now: datetime) -> ReminderInfo:
        local = pick_zone(reminder.zone)

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.astimezone(local).isoformat(timespec="seconds")

        return ReminderInfo(
            id=reminder.id,
            message=reminder.message,
            status=reminder.status,
            due=iso(reminder.due) or "",
            zone=reminder.zone,
            due_in=relative((reminder.due - now).total_seconds()),
            created_at=iso(reminder.created) or "",
            fired_at=iso(reminder.fired),
            late=reminder.late,
            cancelled_at=iso(reminder.cancelled),
            owner=reminder.owner,
        )

    @server.tool(annotations=READ_ONLY)
    def current_time(zone: zone_arg = "") -> CurrentTime:
        """The current date, time, UTC offset and day of the week in a time zone."""
        with tool_errors(TimeInputError):
            local = pick_zone(zone)
            now = clock().astimezone(local)
            return CurrentTime(
                iso=now.isoformat(timespec="seconds"),
                zone=local.key,
                utc_offset=_offset(now),
                abbreviation=now.tzname(),
                daylight_saving=bool(now.dst()),
                day_of_week=WEEKDAYS[now.weekday()],
                date=now.date().isoformat(),
                time=now.strftime("%H:%M:%S"),
                unix=int(now.timestamp()),
            )

    @server.tool(annotations=READ_ONLY)
    def day_of_week(
        date: Annotated[str, Field(max_length=32, description="A date as YYYY-MM-DD, e.g. '2025-12-25'")],
    ) -> DayOfWeek:
        """Which day of the week a date falls on, e.g. '2025-12-25' -> Thursday."""
        with tool_errors(TimeInputError):
            day = parse_date(date)
            return DayOfWeek(
                date=day.isoformat(),
                day_of_week=WEEKDAYS[day.weekday()],
                iso_weekday=day.isoweekday(),
                iso_week=day.isocalendar()[1],
            )

    @server.tool(annotations=READ_ONLY)
    def time_until(
        target: Annotated[
            str,
            Field(
                max_length=64,
                description="Date 'YYYY-MM-DD' (midnight) or date-time 'YYYY-MM-DDTHH:MM', local to 'zone' "
                "unless it ends in an offset like '+02:00' or 'Z'",
            ),
        ],
        zone: zone_arg = "",
    ) -> TimeUntil:
        """How long from now until a date or time (or how long ago it was), in seconds and in words."""
        with tool_errors(TimeInputError):
            local = pick_zone(zone)
            moment = parse_moment(target, local)
            now = clock()
            # Subtract in UTC: aware datetimes sharing a tzinfo subtract as wall clocks, ignoring DST.
            seconds = round((moment.astimezone(timezone.utc) - now.astimezone(timezone.utc)).total_seconds())
            return TimeUntil(
                target=moment.isoformat(timespec="seconds"),
                now=now.astimezone(local).isoformat(timespec="seconds"),
                seconds=seconds,
                in_words=relative(seconds),
                past=seconds < 0,
            )

    @server.tool(name="format_duration", annotations=READ_ONLY)
    def duration_in_words(
        seconds: Annotated[int, Field(ge=0, le=MAX_DURATION_SECONDS, description="A number of seconds, e.g. 7500")],
    ) -> Duration:
        """Write a number of seconds in words, e.g. 7500 -> '2 h 5 min'."""
        return Duration(seconds=seconds, text=format_duration(seconds))

    @server.tool(annotations=UPDATE)  # each call adds another reminder: not idempotent
    async def create_reminder(
        message: Annotated[
            str,
            Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="What to remind about, e.g. 'Call mum'"),
        ],
        at: Annotated[
            str,
            Field(max_length=64, description="When, e.g. '2025-06-01T18:30' in 'zone'; or '' to use in_seconds"),
        ] = "",
        in_seconds: Annotated[
            int | None,
            Field(ge=1, le=MAX_AHEAD_SECONDS, description="Or: how many seconds from now, e.g. 600 for 10 minutes"),
        ] = None,
        zone: zone_arg = "",
    ) -> ReminderInfo:
        """Set a reminder for a time ('at') or after a delay ('in_seconds'); give exactly one of the two."""
        with tool_errors(TimeInputError, ReminderError):
            text = message.strip()
            if not text:
                raise TimeInputError("message is empty; say what the reminder is about")
            if bool(at.strip()) == (in_seconds is not None):
                raise TimeInputError("give exactly one of 'at' (e.g. '2025-06-01T18:30') or 'in_seconds' (e.g. 600)")
            local = pick_zone(zone)
            now = clock()
            due = now + timedelta(seconds=in_seconds) if in_seconds is not None else parse_moment(at, local)
            ahead = (due - now).total_seconds()
            if ahead <= 0:
                shown = now.astimezone(local).isoformat(timespec="seconds")
                raise TimeInputError(f"{at.strip()} is in the past (it is now {shown}); give a future time")
            if ahead > MAX_AHEAD_SECONDS:
                raise TimeInputError(f"{at.strip()} is more than five years ahead; reminders reach five years at most")
            reminder = await anyio.to_thread.run_sync(store.add, text, due, local.key, now, CURRENT_CLIENT.get())
            scheduler.wake()
            return info(reminder, now)

    @server.tool(annotations=READ_ONLY)
    def list_reminders(
        status: Annotated[
            Literal["pending", "fired", "cancelled", "all"],
            Field(description="Which reminders: pending (not yet due), fired, cancelled, or all"),
        ] = "pending",
        limit: Annotated[int, Field(ge=1, le=MAX_LISTED, description=f"At most this many, 1 to {MAX_LISTED}")] = 50,
    ) -> ReminderList:
        """List reminders with their ids, messages and due times; pending ones soonest first."""
        with tool_errors(ReminderError):
            reminders, total = store.select(status, limit)
            now = clock()
            return ReminderList(reminders=[info(reminder, now) for reminder in reminders], total=total)

    @server.tool(annotations=UPDATE)  # each reminder is handed over once: a second call returns the newer ones
    async def due_reminders(
        limit: Annotated[int, Field(ge=1, le=MAX_LISTED, description=f"At most this many, 1 to {MAX_LISTED}")] = 50,
    ) -> ReminderList:
        """The texts of your reminders that fired since you last asked, oldest first; each is returned once."""
        with tool_errors(ReminderError):
            now = clock()
            fired = await anyio.to_thread.run_sync(store.take_fired, CURRENT_CLIENT.get(), now, limit)
            return ReminderList(reminders=[info(reminder, now) for reminder in fired], total=len(fired))

    # Cancelling twice changes nothing more (idempotent) but the reminder will not fire (destructive).
    @server.tool(annotations=OVERWRITE)
    async def cancel_reminder(
        reminder_id: Annotated[
            int, Field(ge=1, le=2**63 - 1, description="The reminder's id, from create_reminder or list_reminders")
        ],
    ) -> ReminderInfo:
        """Cancel a pending reminder so that it never fires."""
        with tool_errors(ReminderError):
            now = clock()
            reminder = await anyio.to_thread.run_sync(store.cancel, reminder_id, now)
            scheduler.wake()
            return info(reminder, now)

    return server


class Settings(BaseModel):
    """The time server's settings (section ``time`` of /etc/claw/mcp.yml)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, gt=0, lt=65536, description="Loopback port over HTTP (required there); unused over stdio"
    )
    zone: str | None = Field(None, description="IANA zone for answers without one; unset = the system's zone")
    database: Path = Path("/var/lib/claw/mcp/time.sqlite3")
    leds_socket: Path | None = Field(None, description="Unix socket of the LED daemon; unset = no LED signal")
    max_pending: int = Field(1000, ge=1, le=100_000)
    late_after_seconds: float = Field(60.0, ge=1, le=3600, description="Fired later than this = flagged late")
    history_days: int = Field(90, ge=1, le=3650, description="Fired/cancelled reminders are forgotten after this")
    console_url: str | None = Field(
        None, description="ThreadWeaver's POST /notifications, for each fired reminder's text; unset = none"
    )
    console_key_file: Path | None = Field(None, description="A ThreadWeaver gateway client's key, for console_url")
    console_ca_file: Path | None = Field(None, description="CA certificate for an https console_url; unset = system")

    @model_validator(mode="after")
    def _console(self) -> "Settings":
        if self.console_url is not None:
            if not self.console_url.startswith(("http://", "https://")):
                raise ValueError(f"console_url {self.console_url!r} is not an http(s) URL")
            if self.console_key_file is None:
                raise ValueError("console_url needs console_key_file (ThreadWeaver refuses posts without a key)")
        return self


def create(settings: Settings) -> MCPServer:
    zone = settings.zone or local_zone_name()
    try:
        load_zone(zone)
        store = ReminderStore(settings.database, max_pending=settings.max_pending)
    except (TimeInputError, ReminderError) as err:
        raise ConfigError(f"server time: {err}") from None
    channels: list[Notify] = [LedSignal(settings.leds_socket)] if settings.leds_socket else []
    if settings.console_url is not None and settings.console_key_file is not None:
        try:
            key = read_key(settings.console_key_file)
            verify = ssl.create_default_context(cafile=settings.console_ca_file) if settings.console_ca_file else True
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"server time: console: {err}") from None
        channels.append(ConsoleNotice(settings.console_url, key, verify=verify))
    notify = Deliveries(channels) if channels else None
    scheduler = ReminderScheduler(
        store,
        utc_now,
        notify,
        late_after=settings.late_after_seconds,
        history=timedelta(days=settings.history_days),
    )
    return build_server(store, zone=zone, clock=utc_now, scheduler=scheduler)
