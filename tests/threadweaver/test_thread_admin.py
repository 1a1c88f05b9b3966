"""Thread administration over the API: delete (gone from the store, the search index, the WAL and the decrypted
pages, its spend still counted), rename, export (JSON and Markdown) and regenerating a reply."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apsw
import httpx
import pytest
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings

from tests.doubles.providers import FakeAnthropic, FakeOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

pytestmark = pytest.mark.anyio
KEY = "cd" * 32
SECRET = "zebrasecret"  # only ever in the thread that is deleted
KEPT = "quokkaword"  # in a thread that stays: the scans' positive control


@pytest.fixture
def fakes():
    return {
        "openai": FakeOpenAI(Reply(f"{SECRET} answered", input_tokens=1_000_000, output_tokens=0)),
        "claude": FakeAnthropic(Reply("Hi from Claude")),
    }


@pytest.fixture
def db_file(tmp_path) -> Path:
    return tmp_path / "threads.db"


@pytest.fixture
async def client(db_file, fakes, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", KEY)
    monkeypatch.setenv("TW_TEST_KEY", "sk-ant-test")
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(db_file), "key_file": None},
            "providers": {
                "openai": {"kind": "openai", "base_url": "https://openai.test/v1"},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_TEST_KEY"},
            },
            "prices": {"openai": {"*": [0.5, 1.0]}},
        }
    )
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(console, sessions())), base_url="http://tw"
    ) as http:
        token = (await http.post("/login", json={"password": PASSWORD})).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http
    console.store.close()


async def new_thread(client, **fields) -> dict:
    response = await client.post("/threads", json={"provider": "openai", "model": "m", **fields})
    assert response.status_code == 201
    return response.json()


async def say(client, thread: dict, text: str, **fields) -> dict:
    response = await client.post(f"/threads/{thread['id']}/messages", json={"content": text, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def sql_rows(path: Path) -> list[str]:
    """Every value of every table (FTS5 shadow tables included), read with the key, as text."""
    db = apsw.Connection(str(path))
    db.pragma("key", KEY)
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    values = [repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')]
    db.close()
    return values


def decrypted_pages(path: Path, tmp: Path) -> bytes:
    """The whole file decrypted, free pages and unused space in pages included: a copy (with its WAL) rekeyed to
    no key, which rewrites every page in the clear."""
    for suffix in ("", "-wal"):
        if Path(f"{path}{suffix}").exists():
            shutil.copy(f"{path}{suffix}", tmp / f"plain.db{suffix}")
    db = apsw.Connection(str(tmp / "plain.db"))
    db.pragma("key", KEY)
    db.pragma("journal_mode", "delete")  # SQLite3MC rekeys only outside WAL mode
    db.pragma("rekey", "")
    db.close()
    return (tmp / "plain.db").read_bytes()


async def test_a_deleted_thread_is_gone_everywhere_but_its_spend_still_counts(client, db_file, tmp_path):
    doomed = await new_thread(client, title=f"About {SECRET}")
    await say(client, doomed, f"tell me about {SECRET}")
    await say(client, doomed, "and more")
    kept = await new_thread(client, title="Kept", provider="claude", model="claude-x")
    await say(client, kept, f"a {KEPT} please")
    spend_before = (await client.get("/spend")).json()
    assert spend_before["total_usd"] == 1.0
    before = decrypted_pages(db_file, tmp_path)
    assert SECRET.encode() in before and KEPT.encode() in before  # the scan sees what is there

    deleted = await client.delete(f"/threads/{doomed['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": doomed["id"], "messages": 4, "wal_cleared": True}

    missing = await client.get(f"/threads/{doomed['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (await client.delete(f"/threads/{doomed['id']}")).status_code == 404
    assert (await client.get(f"/threads/{doomed['id']}/export")).status_code == 404
    assert [t["id"] for t in (await client.get("/threads")).json()] == [kept["id"]]
    assert (await client.get("/search", params={"q": SECRET})).json() == []
    assert [hit["thread_id"] for hit in (await client.get("/search", params={"q": KEPT})).json()] == [kept["id"]]
    # Nothing left in any table (FTS5 index segments included), nor in the decrypted pages (free space included),
    # nor in the WAL (emptied by the checkpoint); the file itself never held it in the clear.
    rows = sql_rows(db_file)
    assert not [row for row in rows if SECRET in row] and any(KEPT in row for row in rows)
    after = decrypted_pages(db_file, tmp_path)
    assert SECRET.encode() not in after and KEPT.encode() in after
    wal = Path(f"{db_file}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert SECRET.encode() not in db_file.read_bytes()
    # The provider cap and the totals still count what the deleted thread spent; the thread is gone from /spend.
    spend = (await client.get("/spend")).json()
    assert spend["total_usd"] == 1.0 and spend["providers"]["openai"]["cost_usd"] == 1.0
    assert list(spend["threads"]) == [kept["id"]]


async def test_rename(client):
    thread = await new_thread(client)
    renamed = await client.patch(f"/threads/{thread['id']}", json={"title": "  Weaving notes "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Weaving notes"
    assert (await client.get(f"/threads/{thread['id']}")).json()["thread"]["title"] == "Weaving notes"
    for bad in ["", "   ", "two\nlines", "tab\there", "x" * 201, None]:
        refused = await client.patch(f"/threads/{thread['id']}", json={"title": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid" and "title" in refused.json()["error"]["message"]
    assert (await client.get(f"/threads/{thread['id']}")).json()["thread"]["title"] == "Weaving notes"
    assert (await client.patch("/threads/nope", json={"title": "x"})).status_code == 404
    # The other settings the UI sets: a per-thread cap (and none again), and the provider.
    capped = await client.patch(f"/threads/{thread['id']}", json={"cap_usd": 0.25, "provider": "claude"})
    assert (capped.json()["cap_usd"], capped.json()["provider"]) == (0.25, "claude")
    assert (await client.patch(f"/threads/{thread['id']}", json={"cap_usd": None})).json()["cap_usd"] is None
    assert (await client.patch(f"/threads/{thread['id']}", json={"cap_usd": -1})).status_code == 422


async def test_export_json_and_markdown(client, fakes):
    thread = await new_thread(client, title="Weaving: notes", system_prompt="Be brief.")
    first = await say(client, thread, "how do you weave?")
    fakes["openai"].replies = [Reply("Over and under.")]
    second = await say(client, thread, "and knit?", parent_id=first["reply"]["id"])
    other = await say(client, thread, "or rather spin?", parent_id=first["user"]["id"])

    whole = await client.get(f"/threads/{thread['id']}/export")
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    assert whole.headers["content-disposition"] == 'attachment; filename="weaving-notes.json"'
    document = whole.json()
    assert (document["format"], document["scope"], document["thread"]["title"]) == (
        "threadweaver.thread/1",
        "tree",
        "Weaving: notes",
    )
    assert len(document["messages"]) == 6 and document["leaves"] == [second["reply"]["id"], other["reply"]["id"]]
    by_id = {m["id"]: m for m in document["messages"]}
    assert by_id[second["user"]["id"]]["parent_id"] == first["reply"]["id"]  # the tree is all there

    one = (await client.get(f"/threads/{thread['id']}/export", params={"leaf": other["reply"]["id"]})).json()
    assert one["scope"] == "branch"
    assert [m["content"] for m in one["messages"]] == ["how do you weave?", "or rather spin?", "Over and under."]

    markdown = await client.get(f"/threads/{thread['id']}/export", params={"format": "markdown"})
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.headers["content-disposition"] == 'attachment; filename="weaving-notes.md"'
    text = markdown.text
    assert text.startswith("# Weaving: notes\n") and "> Be brief." in text
    assert "- provider: openai · m" in text and f"`{second['reply']['id']}`, `{other['reply']['id']}`" not in text
    # The newest leaf's branch, in order, with the other branch named.
    assert text.index("how do you weave?") < text.index("or rather spin?") < text.index("Over and under.")
    assert (
        "and knit?" not in text
        and f"{SECRET} answered" not in text
        and f"the others end at `{second['reply']['id']}`" in text
    )
    assert "## You\n\nor rather spin?\n" in text and "## Assistant (openai · m)\n\nOver and under.\n" in text
    branch = await client.get(
        f"/threads/{thread['id']}/export", params={"format": "markdown", "leaf": second["reply"]["id"]}
    )
    assert "and knit?" in branch.text and "or rather spin?" not in branch.text

    bad = await client.get(f"/threads/{thread['id']}/export", params={"format": "pdf"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
    assert (await client.get("/threads/nope/export")).status_code == 404
    stranger = await say(client, await new_thread(client), "elsewhere")
    assert (
        await client.get(f"/threads/{thread['id']}/export", params={"leaf": stranger["reply"]["id"]})
    ).status_code == 404


async def test_regenerate_adds_a_sibling_and_keeps_the_old_reply(client, fakes):
    thread = await new_thread(client)
    turn = await say(client, thread, "hi")
    old = turn["reply"]
    # Regenerated with the thread's provider and model as they are now.
    await client.patch(f"/threads/{thread['id']}", json={"provider": "claude", "model": "claude-x"})
    again = await client.post(f"/threads/{thread['id']}/messages/{old['id']}/regenerate")
    assert again.status_code == 200, again.text
    new = again.json()["reply"]
    assert (new["parent_id"], new["provider"], new["model"], new["content"]) == (
        turn["user"]["id"],
        "claude",
        "claude-x",
        "Hi from Claude",
    )
    assert fakes["claude"].bodies[-1]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    tree = (await client.get(f"/threads/{thread['id']}")).json()
    assert tree["leaves"] == [old["id"], new["id"]]
    assert [m["content"] for m in tree["messages"] if m["role"] == "assistant"] == [old["content"], "Hi from Claude"]

    # Streamed: the events of a turn, without "user"; a third sibling.
    async with client.stream("POST", f"/threads/{thread['id']}/messages/{new['id']}/regenerate/stream") as response:
        events = [json.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: ")]
    assert events[0]["type"] == "chunk" and events[-1]["type"] == "done"
    tree = (await client.get(f"/threads/{thread['id']}")).json()
    assert len(tree["leaves"]) == 3
    assert {m["parent_id"] for m in tree["messages"] if m["role"] == "assistant"} == {turn["user"]["id"]}

    refused = await client.post(f"/threads/{thread['id']}/messages/{turn['user']['id']}/regenerate")
    assert refused.status_code == 422 and "only a reply can be regenerated" in refused.json()["error"]["message"]
    assert (await client.post(f"/threads/{thread['id']}/messages/nope/regenerate")).status_code == 404
    assert (await client.post(f"/threads/nope/messages/{old['id']}/regenerate")).status_code == 404
    elsewhere = await new_thread(client)
    assert (await client.post(f"/threads/{elsewhere['id']}/messages/{old['id']}/regenerate")).status_code == 404


async def test_regenerate_respects_the_thread_cap(client):
    thread = await new_thread(client, cap_usd=0.5)
    turn = await say(client, thread, "hi")  # $0.50: the cap is reached
    capped = await client.post(f"/threads/{thread['id']}/messages/{turn['reply']['id']}/regenerate")
    assert capped.status_code == 402 and capped.json()["error"]["scope"] == "thread"
