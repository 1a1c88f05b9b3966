"""``/notifications``: services post texts with a gateway client's key, the console lists them with a session;
stored in the console's real (encrypted) SQLite file. Issue #18: a reminder's text and a swarm incident reach the
console."""

from __future__ import annotations

import httpx
import pytest
from claw.threadweaver.notifications import Notifications

from tests.threadweaver.console_login import PASSWORD
from tests.threadweaver.console_notifications import KEY, console_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def parts(tmp_path, monkeypatch):
    app, console = console_app(tmp_path, monkeypatch)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http:
        yield http, console
    console.store.close()


async def logged_in(http: httpx.AsyncClient) -> dict[str, str]:
    token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_a_service_posts_and_the_console_lists_newest_first(parts):
    http, console = parts
    machine = {"Authorization": f"Bearer {KEY}"}
    reminder = {"source": "reminder", "title": "Reminder", "text": "Call mum", "agent": "main", "reminder_id": 7}
    first = await http.post("/notifications", json=reminder, headers=machine)
    assert first.status_code == 201, first.text
    assert first.json()["client"] == "claw-mcp" and first.json()["detail"] == {"reminder_id": 7}
    incident = {"source": "claw-swarm", "id": 3, "worker": "research", "kind": "stopped", "symptom": "stopped",
                "action": "killed and restarted", "logs": ["froze"]}  # fmt: skip
    assert (await http.post("/notifications", json=incident, headers=machine)).status_code == 201
    listed = (await http.get("/notifications", headers=await logged_in(http))).json()["notifications"]
    assert [(n["source"], n["text"], n["agent"]) for n in listed] == [
        ("claw-swarm", "research: stopped: killed and restarted", None),
        ("reminder", "Call mum", "main"),
    ]
    assert listed[0]["detail"]["logs"] == ["froze"]
    newer = await http.get("/notifications", params={"after": listed[1]["id"]}, headers=await logged_in(http))
    assert [n["source"] for n in newer.json()["notifications"]] == ["claw-swarm"]
    stored = Notifications(console.store.db).recent()  # the same SQLite file, read anew
    assert [n.text for n in stored] == ["research: stopped: killed and restarted", "Call mum"]


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer sk-wrong-0123456789abcdef", f"Basic {KEY}"])
async def test_posting_needs_a_gateway_clients_key(parts, authorization):
    http, console = parts
    headers = {"Authorization": authorization} if authorization else {}
    answer = await http.post("/notifications", json={"source": "x", "text": "spoofed"}, headers=headers)
    assert answer.status_code == 401
    assert Notifications(console.store.db).recent() == []


async def test_listing_needs_a_session_and_posts_need_a_text(parts):
    http, _ = parts
    assert (await http.get("/notifications")).status_code == 401
    assert (await http.get("/notifications", headers={"Authorization": f"Bearer {KEY}"})).status_code == 401
    machine = {"Authorization": f"Bearer {KEY}"}
    for body in ({"source": "reminder"}, {"source": "reminder", "text": "  "}, {"text": "no source"}):
        assert (await http.post("/notifications", json=body, headers=machine)).status_code == 422


async def test_only_the_newest_are_kept(parts):
    _, console = parts
    table = Notifications(console.store.db, max_kept=3)
    for n in range(5):
        table.add("claw-mcp", "reminder", f"n{n}")
    assert [n.text for n in table.recent()] == ["n4", "n3", "n2"]
