"""A fired reminder delivers its text (issue #18), not only a light: to the console (a real ThreadWeaver's
``/notifications``) and to the agent that set it (``due_reminders``, per MCP client), with the LED signal on a real
LED daemon (simulated strip). The time server is served over HTTP behind the real client keys."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest
from claw.leds.backends import SimulatedBackend
from claw.leds.client import LedClient
from claw.leds.daemon import LedDaemon, LedService
from claw.leds.state import LedState
from claw.mcp.reminders import ConsoleNotice, Deliveries, LedSignal, Reminder, ReminderScheduler, ReminderStore
from claw.mcp.time import build_server

from tests.mcp.keys import keyed
from tests.mcp.serving import callers, served
from tests.mcp.test_mcp_runtime import free_port
from tests.mcp.test_mcp_time_server import FakeClock
from tests.threadweaver.console_notifications import KEY as CONSOLE_KEY
from tests.threadweaver.console_notifications import listed, served_console

pytestmark = pytest.mark.anyio
A_KEY = "agent-a-key-" + "a" * 40
B_KEY = "agent-b-key-" + "b" * 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def console(tmp_path, monkeypatch) -> AsyncIterator[str]:
    async with served_console(tmp_path, monkeypatch) as url:
        yield url


@pytest.fixture
async def leds() -> AsyncIterator[LedClient]:
    with tempfile.TemporaryDirectory(prefix="leds-", dir="/tmp") as directory:  # unix socket paths are short
        backend = SimulatedBackend(Path(directory) / "state.json")
        async with LedDaemon(LedService(LedState(), backend.name), backend, Path(directory) / "leds.sock") as daemon:
            yield LedClient(daemon.socket_path, timeout=2)


async def due(url: str, key: str) -> list[str]:
    async with keyed(url, key) as client:
        result = await client.call_tool("due_reminders", {})
    assert not result.is_error, result.content
    return [reminder["message"] for reminder in result.structured_content["reminders"]]


async def test_a_fired_reminder_reaches_the_console_and_its_owner_only(tmp_path, console, leds):
    clock = FakeClock()
    store = ReminderStore(tmp_path / "time.sqlite3")
    delivery = Deliveries([LedSignal(leds.socket_path), ConsoleNotice(f"{console}/notifications", CONSOLE_KEY)])
    scheduler = ReminderScheduler(store, clock, delivery)
    server = build_server(store, zone="UTC", clock=clock, scheduler=scheduler)
    known = callers({"agent-a": (A_KEY, {"time": "*"}), "agent-b": (B_KEY, {"time": "*"})})
    async with served(server, known) as url, keyed(url, A_KEY) as agent_a, keyed(url, B_KEY) as agent_b:
        made = await agent_a.call_tool("create_reminder", {"message": "Call mum", "in_seconds": 60})
        assert made.structured_content["owner"] == "agent-a"
        await agent_b.call_tool("create_reminder", {"message": "Water the plants", "in_seconds": 120})
        assert await due(url, A_KEY) == []
        clock.advance(61)
        await scheduler.fire_due()
        shown = await listed(console)
        assert [(n["source"], n["text"], n["agent"], n["client"]) for n in shown] == [
            ("reminder", "Call mum", "agent-a", "claw-mcp")
        ]
        assert shown[0]["detail"]["reminder_id"] == made.structured_content["id"]
        lit = await leds.get()
        assert lit["winner"]["source"] == "reminder" and lit["winner"]["state"] == "reminder"
        assert await due(url, B_KEY) == []
        assert await due(url, A_KEY) == ["Call mum"]
        assert await due(url, A_KEY) == []  # handed over once
        clock.advance(60)
        await scheduler.fire_due()
        assert await due(url, A_KEY) == []
        assert await due(url, B_KEY) == ["Water the plants"]
        assert [n["text"] for n in await listed(console)] == ["Water the plants", "Call mum"]
    store.close()


def reminder(owner: str | None = "agent-a") -> Reminder:
    now = datetime(2025, 6, 2, tzinfo=timezone.utc)
    return Reminder(1, "Call mum", now, "UTC", "fired", now, now, False, None, owner)


@pytest.mark.parametrize("how", ["down", "wrong key"])
async def test_a_console_that_refuses_or_is_down_is_logged_not_raised(console, caplog, how):
    url = f"http://127.0.0.1:{free_port()}/notifications" if how == "down" else f"{console}/notifications"
    key = CONSOLE_KEY if how == "down" else "sk-not-a-client-0123456789"
    with caplog.at_level(logging.WARNING, logger="claw.mcp.reminders"), anyio.fail_after(10):
        await ConsoleNotice(url, key, timeout=2)([reminder()])
    assert "reminder notification to the console" in caplog.text
    assert ("401" in caplog.text) == (how == "wrong key")
    assert await listed(console) == []


def test_a_version_one_database_gains_owners(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE reminders (id INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL, due_at REAL NOT NULL,"
        " zone TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', created_at REAL NOT NULL, fired_at REAL,"
        " late INTEGER NOT NULL DEFAULT 0, cancelled_at REAL);"
        "INSERT INTO reminders (message, due_at, zone, created_at) VALUES ('from before', 1, 'UTC', 0);"
    )
    old.commit()
    old.close()
    store = ReminderStore(path)
    now = datetime(2025, 6, 2, tzinfo=timezone.utc)
    assert [r.message for r in store.fire_due(now, 60)] == ["from before"]
    assert [r.message for r in store.take_fired(None, now, 10)] == ["from before"]  # a local user's
    assert store.take_fired(None, now, 10) == []
    store.close()
