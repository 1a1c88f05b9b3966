"""The `time` MCP server in-process: zones, DST-aware countdowns, durations, and persistent reminders."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from claw.mcp.registry import ConfigError
from claw.mcp.reminders import LedSignal, ReminderScheduler, ReminderStore
from claw.mcp.time import Settings, build_server, create, format_duration, local_zone_name
from mcp import Client
from pydantic import ValidationError

from tests.mcp.tool_results import error_of, text_of

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 6, 2, 10, 0, 0, tzinfo=timezone.utc)  # a Monday; 12:00 CEST in Berlin
READ_TOOLS = {"current_time", "day_of_week", "time_until", "format_duration", "list_reminders"}
EXPECTED_TOOLS = READ_TOOLS | {"create_reminder", "cancel_reminder", "due_reminders"}


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def ok(result) -> dict:
    assert not result.is_error, text_of(result)
    return result.structured_content


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "state" / "time.sqlite3"


@pytest.fixture
def store(database: Path):
    opened = ReminderStore(database, max_pending=3)
    yield opened
    opened.close()


def server(store: ReminderStore, clock=None, scheduler=None, zone: str = "Europe/Berlin"):
    clock = clock or FakeClock()
    return build_server(store, zone=zone, clock=clock, scheduler=scheduler or ReminderScheduler(store, clock))


async def test_tools_list_has_annotations_and_schemas(store):
    async with Client(server(store)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    for name, tool in tools.items():
        assert tool.description, name
        assert tool.output_schema is not None, name
        assert tool.annotations.open_world_hint is False, name
        assert (tool.annotations.read_only_hint is True) == (name in READ_TOOLS), name
    create_ = tools["create_reminder"]
    assert (create_.annotations.destructive_hint, create_.annotations.idempotent_hint) == (False, False)
    assert tools["cancel_reminder"].annotations.destructive_hint is True
    props = create_.input_schema["properties"]
    assert (props["message"]["minLength"], props["message"]["maxLength"]) == (1, 500)
    assert props["in_seconds"]["anyOf"][0]["minimum"] == 1
    assert props["zone"]["maxLength"] == 64
    assert "Europe/Berlin" in props["zone"]["description"]
    assert create_.input_schema["required"] == ["message"]
    status = tools["list_reminders"].input_schema["properties"]["status"]
    assert status["enum"] == ["pending", "fired", "cancelled", "all"]
    assert tools["format_duration"].input_schema["properties"]["seconds"]["minimum"] == 0
    assert tools["cancel_reminder"].input_schema["properties"]["reminder_id"]["minimum"] == 1


@pytest.mark.parametrize(
    ("zone", "iso", "offset", "abbreviation", "dst"),
    [
        ("", "2025-06-02T12:00:00+02:00", "+02:00", "CEST", True),
        ("America/New_York", "2025-06-02T06:00:00-04:00", "-04:00", "EDT", True),
        ("Asia/Kolkata", "2025-06-02T15:30:00+05:30", "+05:30", "IST", False),
        ("UTC", "2025-06-02T10:00:00+00:00", "+00:00", "UTC", False),
    ],
)
async def test_current_time_in_zones(store, zone, iso, offset, abbreviation, dst):
    async with Client(server(store)) as client:
        now = ok(await client.call_tool("current_time", {"zone": zone}))
    assert now["iso"] == iso
    assert now["zone"] == (zone or "Europe/Berlin")
    assert (now["utc_offset"], now["abbreviation"], now["daylight_saving"]) == (offset, abbreviation, dst)
    assert now["day_of_week"] == "Monday"
    assert now["date"] == iso[:10] and now["time"] == iso[11:19]
    assert now["unix"] == int(NOW.timestamp())


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'; use an IANA name like 'Europe/Berlin' or 'UTC'"),
        ("europe/berlin", "unknown time zone 'europe/berlin'; did you mean 'Europe/Berlin'?"),
        ("../../etc/passwd", "unknown time zone '../../etc/passwd'; use an IANA name like 'Europe/Berlin' or 'UTC'"),
    ],
)
async def test_invalid_zone_is_named_in_the_error(store, zone, message):
    async with Client(server(store)) as client:
        result = await client.call_tool("current_time", {"zone": zone})
    assert error_of(result, "current_time") == message


async def test_day_of_week(store):
    async with Client(server(store)) as client:
        christmas = ok(await client.call_tool("day_of_week", {"date": "2025-12-25"}))
        leap = ok(await client.call_tool("day_of_week", {"date": "2028-02-29"}))
        bad = await client.call_tool("day_of_week", {"date": "2025-02-30"})
    assert christmas == {"date": "2025-12-25", "day_of_week": "Thursday", "iso_weekday": 4, "iso_week": 52}
    assert leap["day_of_week"] == "Tuesday"
    assert error_of(bad, "day_of_week") == "'2025-02-30' is not a valid date; use YYYY-MM-DD, e.g. '2025-06-01'"


async def test_time_until_counts_real_seconds_across_a_dst_change(store):
    clock = FakeClock(datetime(2025, 3, 29, 11, 0, tzinfo=timezone.utc))  # Sat 12:00 CET in Berlin
    async with Client(server(store, clock)) as client:
        # Berlin springs forward on 2025-03-30: noon to noon is 23 real hours.
        sunday = ok(await client.call_tool("time_until", {"target": "2025-03-30T12:00", "zone": "Europe/Berlin"}))
        midnight = ok(await client.call_tool("time_until", {"target": "2025-03-29"}))
        utc = ok(await client.call_tool("time_until", {"target": "2025-03-29T12:30:00Z", "zone": "Asia/Tokyo"}))
        gap = await client.call_tool("time_until", {"target": "2025-03-30T02:30"})
        bad = await client.call_tool("time_until", {"target": "next tuesday"})
    assert sunday == {
        "target": "2025-03-30T12:00:00+02:00",
        "now": "2025-03-29T12:00:00+01:00",
        "seconds": 23 * 3600,
        "in_words": "in 23 h",
        "past": False,
    }
    assert (midnight["seconds"], midnight["in_words"], midnight["past"]) == (-12 * 3600, "12 h ago", True)
    assert (utc["seconds"], utc["in_words"], utc["now"]) == (5400, "in 1 h 30 min", "2025-03-29T20:00:00+09:00")
    assert error_of(gap, "time_until") == (
        "2025-03-30T02:30 does not exist in Europe/Berlin: the clocks skip that hour for daylight saving"
    )
    assert error_of(bad, "time_until") == (
        "'next tuesday' is not an ISO date or date-time; use e.g. '2025-06-01' or '2025-06-01T18:30'"
    )


async def test_format_duration(store):
    async with Client(server(store)) as client:
        results = [ok(await client.call_tool("format_duration", {"seconds": s}))["text"] for s in (7500, 0, 90061, 59)]
        negative = await client.call_tool("format_duration", {"seconds": -5})
    assert results == ["2 h 5 min", "0 s", "1 d 1 h 1 min 1 s", "59 s"]
    assert negative.is_error
    assert format_duration(90061, max_units=2) == "1 d 1 h"


async def test_create_list_and_cancel_reminders(store):
    async with Client(server(store)) as client:
        soon = ok(await client.call_tool("create_reminder", {"message": "  Tea is ready  ", "in_seconds": 600}))
        evening = ok(
            await client.call_tool(
                "create_reminder", {"message": "Call mum", "at": "2025-06-02T18:30", "zone": "Europe/London"}
            )
        )
        pending = ok(await client.call_tool("list_reminders", {}))
        cancelled = ok(await client.call_tool("cancel_reminder", {"reminder_id": soon["id"]}))
        again = await client.call_tool("cancel_reminder", {"reminder_id": soon["id"]})
        unknown = await client.call_tool("cancel_reminder", {"reminder_id": 999})
        after = ok(await client.call_tool("list_reminders", {"status": "pending"}))
        every = ok(await client.call_tool("list_reminders", {"status": "all", "limit": 1}))
        gone = ok(await client.call_tool("list_reminders", {"status": "cancelled"}))
    assert soon == {
        "id": 1,
        "message": "Tea is ready",
        "status": "pending",
        "due": "2025-06-02T12:10:00+02:00",
        "zone": "Europe/Berlin",
        "due_in": "in 10 min",
        "created_at": "2025-06-02T12:00:00+02:00",
        "fired_at": None,
        "late": False,
        "cancelled_at": None,
        "owner": None,  # made in-process: no MCP client
    }
    assert (evening["due"], evening["zone"], evening["due_in"]) == (
        "2025-06-02T18:30:00+01:00",
        "Europe/London",
        "in 7 h 30 min",
    )
    assert [r["id"] for r in pending["reminders"]] == [soon["id"], evening["id"]]
    assert pending["total"] == 2
    assert (cancelled["status"], cancelled["cancelled_at"]) == ("cancelled", "2025-06-02T12:00:00+02:00")
    assert error_of(again, "cancel_reminder") == f"reminder {soon['id']} is already cancelled"
    assert error_of(unknown, "cancel_reminder") == "there is no reminder with id 999; list_reminders shows the ids"
    assert [r["id"] for r in after["reminders"]] == [evening["id"]]
    assert (every["total"], len(every["reminders"])) == (2, 1)
    assert [r["id"] for r in gone["reminders"]] == [soon["id"]]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"message": "x", "at": "2025-06-02T18:30", "in_seconds": 60}, "give exactly one of 'at'"),
        ({"message": "x"}, "give exactly one of 'at'"),
        ({"message": "   ", "in_seconds": 60}, "message is empty; say what the reminder is about"),
        (
            {"message": "x", "at": "2025-06-02T11:59"},
            "2025-06-02T11:59 is in the past (it is now 2025-06-02T12:00:00+02:00)",
        ),
        ({"message": "x", "at": "2031-06-02T12:00"}, "2031-06-02T12:00 is more than five years ahead"),
        ({"message": "x", "at": "18:30"}, "'18:30' is not an ISO date or date-time"),
        ({"message": "x", "in_seconds": 60, "zone": "Berlin"}, "unknown time zone 'Berlin'"),
    ],
)
async def test_create_reminder_refusals_are_precise(store, arguments, message):
    async with Client(server(store)) as client:
        result = await client.call_tool("create_reminder", arguments)
        listed = ok(await client.call_tool("list_reminders", {"status": "all"}))
    assert error_of(result, "create_reminder").startswith(message)
    assert listed["total"] == 0


async def test_schema_bounds_refuse_long_messages(store):
    async with Client(server(store)) as client:
        result = await client.call_tool("create_reminder", {"message": "x" * 501, "in_seconds": 60})
    assert result.is_error
    assert store.select("all", 10) == ([], 0)


async def test_pending_limit_is_a_clear_error(store):
    async with Client(server(store)) as client:
        for n in range(3):
            ok(await client.call_tool("create_reminder", {"message": f"r{n}", "in_seconds": 60 + n}))
        full = await client.call_tool("create_reminder", {"message": "one too many", "in_seconds": 60})
        ok(await client.call_tool("cancel_reminder", {"reminder_id": 1}))
        room = await client.call_tool("create_reminder", {"message": "fits again", "in_seconds": 60})
    assert error_of(full, "create_reminder") == (
        "there are already 3 pending reminders, the limit; cancel some before adding more"
    )
    assert not room.is_error


async def test_reminders_survive_closing_and_reopening_the_database(database):
    first = ReminderStore(database)
    async with Client(server(first)) as client:
        ok(await client.call_tool("create_reminder", {"message": "water the plants", "in_seconds": 3600}))
        ok(await client.call_tool("create_reminder", {"message": "cancelled one", "in_seconds": 60}))
        ok(await client.call_tool("cancel_reminder", {"reminder_id": 2}))
    first.close()
    with sqlite3.connect(database) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reopened = ReminderStore(database)
    try:
        async with Client(server(reopened)) as client:
            pending = ok(await client.call_tool("list_reminders", {}))
            every = ok(await client.call_tool("list_reminders", {"status": "all"}))
    finally:
        reopened.close()
    assert [(r["id"], r["message"], r["due"]) for r in pending["reminders"]] == [
        (1, "water the plants", "2025-06-02T13:00:00+02:00")
    ]
    assert sorted(r["status"] for r in every["reminders"]) == ["cancelled", "pending"]


async def test_reminders_due_while_down_fire_at_startup_flagged_late(database):
    before = ReminderStore(database)
    before.add("long overdue", NOW - timedelta(hours=2), "Europe/Berlin", NOW - timedelta(hours=3))
    before.add("just due", NOW - timedelta(seconds=30), "Europe/Berlin", NOW - timedelta(hours=1))
    before.add("tomorrow", NOW + timedelta(days=1), "Europe/Berlin", NOW - timedelta(hours=1))
    before.close()
    store = ReminderStore(database)
    signals = []

    async def notify(fired):
        signals.append([r.message for r in fired])

    clock = FakeClock()
    try:
        async with Client(server(store, clock, ReminderScheduler(store, clock, notify))) as client:
            fired = ok(await client.call_tool("list_reminders", {"status": "fired"}))
            pending = ok(await client.call_tool("list_reminders", {"status": "pending"}))
    finally:
        store.close()
    by_message = {r["message"]: r for r in fired["reminders"]}
    assert set(by_message) == {"long overdue", "just due"}
    assert by_message["long overdue"]["late"] is True
    assert by_message["just due"]["late"] is False  # within late_after (60 s)
    assert by_message["long overdue"]["fired_at"] == "2025-06-02T12:00:00+02:00"
    assert by_message["long overdue"]["due_in"] == "2 h ago"
    assert [r["message"] for r in pending["reminders"]] == ["tomorrow"]
    assert signals == [["long overdue", "just due"]]


async def test_scheduler_fires_a_due_reminder_with_the_injected_clock(store):
    clock = FakeClock()
    signals = []

    async def notify(fired):
        signals.append([(r.id, r.late) for r in fired])

    scheduler = ReminderScheduler(store, clock, notify)
    async with Client(server(store, clock, scheduler)) as client:
        created = ok(await client.call_tool("create_reminder", {"message": "stretch", "in_seconds": 90}))
        await anyio.sleep(0.05)
        assert ok(await client.call_tool("list_reminders", {"status": "fired"}))["total"] == 0
        clock.advance(91)
        scheduler.wake()
        with anyio.fail_after(5):
            while not (fired := ok(await client.call_tool("list_reminders", {"status": "fired"})))["total"]:
                await anyio.sleep(0.02)
    reminder = fired["reminders"][0]
    assert (reminder["id"], reminder["status"], reminder["late"]) == (created["id"], "fired", False)
    assert reminder["fired_at"] == "2025-06-02T12:01:31+02:00"
    assert signals == [[(created["id"], False)]]


async def test_purge_forgets_old_history_but_keeps_pending(store):
    store.add("old fired", NOW - timedelta(days=100), "UTC", NOW - timedelta(days=101))
    store.add("old too", NOW - timedelta(days=100), "UTC", NOW - timedelta(days=101))
    store.fire_due(NOW - timedelta(days=99, hours=23), late_after=60)
    store.add("still pending", NOW + timedelta(days=1), "UTC", NOW)
    assert store.purge(NOW - timedelta(days=90)) == 2
    assert [r.message for r in store.select("all", 10)[0]] == ["still pending"]


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (b'{"ok": true, "layers": []}\n', None),
        (b'{"ok": false, "error": "unknown state \'reminder\'"}\n', "refused the reminder signal: unknown state"),
        (b"", None),
    ],
)
async def test_led_signal_sends_one_json_line_and_logs_a_refusal(caplog, answer, logged):
    received = []
    with tempfile.TemporaryDirectory(prefix="leds") as directory:  # short path: unix sockets allow ~107 bytes
        path = Path(directory) / "leds.sock"
        listener = await anyio.create_unix_listener(path)

        async def serve(stream):
            async with stream:
                received.append(await stream.receive())
                if answer:
                    await stream.send(answer)

        with caplog.at_level(logging.WARNING, logger="claw.mcp.reminders"):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(listener.serve, serve)
                await LedSignal(path)([])
                tasks.cancel_scope.cancel()
        await listener.aclose()
    assert received == [b'{"op": "signal", "source": "reminder", "state": "reminder", "ttl": 60}\n']
    if logged:
        assert logged in caplog.text
    else:
        assert caplog.text == ""


async def test_led_signal_tolerates_a_missing_daemon(caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="claw.mcp.reminders"):
        await LedSignal(tmp_path / "absent.sock")([])
    assert "reminder LED signal to" in caplog.text and "absent.sock failed" in caplog.text


def test_settings_defaults_and_refusals(tmp_path):
    defaults = Settings()
    assert (defaults.port, defaults.zone, defaults.leds_socket) == (None, None, None)
    assert defaults.database == Path("/var/lib/claw/mcp/time.sqlite3")
    assert defaults.max_pending == 1000
    with pytest.raises(ValidationError):
        Settings.model_validate({"colour": "red"})
    with pytest.raises(ValidationError):
        Settings.model_validate({"max_pending": 0})


def test_create_refuses_a_bad_zone_and_an_unusable_database(tmp_path):
    with pytest.raises(ConfigError, match="server time: unknown time zone 'Moon/Base'"):
        create(Settings(zone="Moon/Base", database=tmp_path / "t.sqlite3"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot open the reminder database"):
        create(Settings(zone="UTC", database=blocker / "t.sqlite3"))
    assert create(Settings(zone="UTC", database=tmp_path / "t.sqlite3")).name == "time"
    assert (tmp_path / "t.sqlite3").exists()


def test_local_zone_comes_from_etc(tmp_path, monkeypatch):
    monkeypatch.delenv("TZ", raising=False)
    etc = tmp_path / "etc"
    etc.mkdir()
    assert local_zone_name(etc) == "UTC"
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    assert local_zone_name(etc) == "Asia/Tokyo"
    (etc / "timezone").write_text("Europe/Lisbon\n")
    assert local_zone_name(etc) == "Europe/Lisbon"
    monkeypatch.setenv("TZ", ":America/Chicago")
    assert local_zone_name(etc) == "America/Chicago"


async def test_a_database_failure_is_a_precise_tool_error(database):
    broken = ReminderStore(database)
    async with Client(server(broken)) as client:
        broken.close()
        listed = await client.call_tool("list_reminders", {})
        created = await client.call_tool("create_reminder", {"message": "x", "in_seconds": 60})
    expected = f"the reminder database {database} failed: Cannot operate on a closed database."
    assert error_of(listed, "list_reminders") == expected
    assert error_of(created, "create_reminder") == expected
