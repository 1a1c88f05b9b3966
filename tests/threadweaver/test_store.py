"""The encrypted thread store: nothing in the clear on disk, wrong keys refused, trees, search, durability."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from claw.threadweaver import keys
from claw.threadweaver.ledger import Ledger
from claw.threadweaver.store import ReplyWriter, StoreError, StoreKeyError, ThreadStore

APPS = Path(__file__).resolve().parents[2] / "apps"
KEY = "0f" * 32
SECRET = "the-cormorant-sings-at-midnight"


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "threads.db", KEY) as opened:
        yield opened


@pytest.fixture
def ledger(store):
    return Ledger(store.db)


def test_no_message_text_in_the_database_or_wal_bytes(tmp_path):
    path = tmp_path / "threads.db"
    store = ThreadStore(path, KEY)
    thread = store.create_thread("openai", "gpt-4o-mini", title="secret plans")
    user = store.add_message(thread.id, None, "user", f"please remember {SECRET}")
    store.add_message(thread.id, user.id, "assistant", f"I will remember {SECRET}")
    assert store.search("cormorant")  # the FTS index has it, inside the encrypted file
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # still open: the text is in the WAL right now
    for file in (path, wal):
        raw = file.read_bytes()
        assert SECRET.encode() not in raw and b"cormorant" not in raw and b"secret plans" not in raw
        assert not raw.startswith(b"SQLite format 3")
    store.close()
    assert SECRET.encode() not in path.read_bytes()


def test_a_wrong_key_fails_clearly_and_changes_nothing(tmp_path):
    path = tmp_path / "threads.db"
    with ThreadStore(path, KEY) as store:
        store.add_message(store.create_thread("crush", "gemma3").id, None, "user", "hello")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(StoreKeyError, match=r"the thread store at .*threads\.db cannot be opened with this key"):
        ThreadStore(path, "1e" * 32)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert after == before
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes
    with ThreadStore(path, KEY) as store:  # the right key still opens it
        assert [m.content for m in store.messages(store.threads()[0].id)] == ["hello"]


def test_branches_paths_and_compare(store):
    thread = store.create_thread("openai", "gpt-4o-mini")
    q = store.add_message(thread.id, None, "user", "name a colour")
    a1 = store.add_message(thread.id, q.id, "assistant", "blue")
    f1 = store.add_message(thread.id, a1.id, "user", "why blue?")
    a2 = store.add_message(thread.id, q.id, "assistant", "red")  # a second answer: a branch at q
    f2 = store.add_message(thread.id, a2.id, "user", "why red?")
    assert [m.content for m in store.path(f1.id)] == ["name a colour", "blue", "why blue?"]
    assert [m.content for m in store.path(f2.id)] == ["name a colour", "red", "why red?"]
    assert [leaf.id for leaf in store.leaves(thread.id)] == [f1.id, f2.id]
    assert [len(branch) for branch in store.branches(thread.id)] == [3, 3]
    diff = store.compare(f1.id, f2.id)
    assert [m.id for m in diff.common] == [q.id]
    assert [m.content for m in diff.only_a] == ["blue", "why blue?"]
    assert [m.content for m in diff.only_b] == ["red", "why red?"]
    assert [c.id for c in store.children(q.id)] == [a1.id, a2.id]


def test_search_returns_thread_message_and_snippet(store):
    one = store.create_thread("openai", "m")
    two = store.create_thread("crush", "m")
    store.add_message(one.id, None, "user", "the quick brown fox jumps")
    hit_message = store.add_message(two.id, None, "user", "a lazy dog sleeps near the fox den")
    hits = store.search("lazy fox")
    assert [(h.thread_id, h.message_id) for h in hits] == [(two.id, hit_message.id)]
    assert "[lazy]" in hits[0].snippet and "[fox]" in hits[0].snippet
    assert store.search('fox" OR "x') == []  # user text is never FTS5 syntax
    assert len(store.search("fox")) == 2


def test_add_chain_stores_a_conversation_in_one_transaction(store):
    thread = store.create_thread("crush", "m")
    root = store.add_message(thread.id, None, "user", "first")
    chain = store.add_chain(thread.id, root.id, [("assistant", "second"), ("user", "third")], provider="crush")
    assert [m.content for m in store.path(chain[-1].id)] == ["first", "second", "third"]
    assert [store.message(m.id).seq for m in chain] == [m.seq for m in chain] == [root.seq + 1, root.seq + 2]
    assert store.message(chain[0].id).provider == "crush"
    assert [h.message_id for h in store.search("third")] == [chain[-1].id]
    other = store.create_thread("crush", "m")
    with pytest.raises(StoreError, match="not in thread"):
        store.add_chain(other.id, root.id, [("user", "stray")])
    with pytest.raises(StoreError, match="unknown role"):
        store.add_chain(thread.id, None, [("user", "ok"), ("robot", "no")])
    assert store.search("stray") == [] and store.search("ok") == []  # all or nothing


def test_usage_and_cost_are_recorded_per_message(store, ledger):
    thread = store.create_thread("openai", "gpt-4o-mini")
    store.add_message(thread.id, None, "assistant", "hi", provider="openai", tokens_in=10, tokens_out=5, cost_usd=0.25)
    other = store.create_thread("anthropic", "claude")
    store.add_message(other.id, None, "assistant", "yo", provider="anthropic", tokens_in=3, tokens_out=2, cost_usd=1.0)
    assert ledger.spend(thread_id=thread.id) == 0.25
    assert ledger.spend(provider="anthropic") == 1.0
    summary = ledger.spend_summary()
    assert summary["total_usd"] == 1.25
    assert summary["providers"]["openai"] == {
        "cost_usd": 0.25, "tokens_in": 10, "tokens_out": 5, "messages": 1, "gateway_requests": 0
    }  # fmt: skip


def test_gateway_usage_counts_per_client_and_towards_the_provider(store, ledger):
    thread = store.create_thread("openai", "gpt-4o-mini")
    store.add_message(thread.id, None, "assistant", "hi", provider="openai", tokens_in=10, tokens_out=5, cost_usd=0.25)
    ledger.record_gateway_usage("agent-a", "openai", "gpt-4o-mini", tokens_in=100, tokens_out=50, cost_usd=0.5)
    ledger.record_gateway_usage("agent-a", "claude", "claude-x", tokens_in=1, tokens_out=2, cost_usd=0.125)
    ledger.record_gateway_usage("agent-b", "openai", "gpt-4o-mini", cost_usd=1.0, status="partial")
    assert ledger.spend(client="agent-a") == 0.625
    assert ledger.spend(client="agent-a", provider="openai") == 0.5
    assert ledger.spend(provider="openai") == 1.75  # threads and gateway: what the provider cap counts
    assert ledger.spend(thread_id=thread.id) == 0.25  # a thread's spend is its own messages only
    assert ledger.spend() == 1.875
    usage = ledger.gateway_usage()
    assert usage["agent-a"]["requests"] == 2 and usage["agent-a"]["cost_usd"] == 0.625
    assert usage["agent-a"]["providers"]["claude"] == {
        "cost_usd": 0.125,
        "tokens_in": 1,
        "tokens_out": 2,
        "requests": 1,
    }
    summary = ledger.spend_summary()
    assert summary["total_usd"] == 1.875
    assert summary["providers"]["openai"]["messages"] == 1 and summary["providers"]["openai"]["gateway_requests"] == 2


def test_a_store_made_before_the_gateway_gets_its_table_on_open(tmp_path):
    with ThreadStore(tmp_path / "old.db", "k" * 64) as old:
        Ledger(old.db).db.execute("DROP TABLE gateway_usage")
    with ThreadStore(tmp_path / "old.db", "k" * 64) as reopened:
        ledger = Ledger(reopened.db)
        ledger.record_gateway_usage("agent", "openai", "m", cost_usd=0.5)
        assert ledger.spend(client="agent") == 0.5


def test_reply_writer_flushes_periodically_and_completes(store):
    thread = store.create_thread("openai", "m")
    user = store.add_message(thread.id, None, "user", "count")
    writer = ReplyWriter.start(store, thread.id, user.id, provider="openai", model="m", every_chunks=2, every_s=60)
    writer.add("one ")
    assert store.message(writer.message.id).content == ""
    writer.add("two ")
    assert store.message(writer.message.id).content == "one two "
    assert store.message(writer.message.id).status == "partial"
    writer.add("three")
    done = writer.finish(tokens_in=4, tokens_out=3, cost_usd=0.01, finish_reason="stop")
    assert (done.content, done.status, done.tokens_out) == ("one two three", "complete", 3)


def test_a_reply_streaming_when_killed_leaves_the_user_message_and_the_partial_reply(tmp_path):
    path = tmp_path / "threads.db"
    script = textwrap.dedent(f"""
        import sys, time
        from claw.threadweaver.store import ReplyWriter, ThreadStore
        store = ThreadStore({str(path)!r}, {KEY!r})
        thread = store.create_thread("crush", "gemma3")
        user = store.add_message(thread.id, None, "user", "tell me a long story")
        writer = ReplyWriter.start(store, thread.id, user.id, provider="crush", model="gemma3", every_chunks=1)
        for n in range(1000):
            writer.add(f"word{{n}} ")
            if n == 5:
                print("STREAMING", flush=True)
            time.sleep(0.01)
    """)
    env = {**os.environ, "PYTHONPATH": str(APPS)}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert process.stdout.readline().strip() == "STREAMING"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    with ThreadStore(path, KEY) as store:
        thread = store.threads()[0]
        user, reply = store.messages(thread.id)
        assert (user.role, user.content, user.status) == ("user", "tell me a long story", "complete")
        assert (reply.role, reply.status, reply.parent_id) == ("assistant", "partial", user.id)
        assert reply.content.startswith("word0 word1 word2 word3 word4 word5 ")


def test_key_file_is_created_private_and_loose_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(keys.DEFAULT_ENV, raising=False)
    path = tmp_path / "etc" / "store.key"
    key = keys.resolve(path)
    assert len(key) == 64 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert keys.resolve(path) == key
    path.chmod(0o644)
    with pytest.raises(keys.KeyFileError, match="mode 0644, readable by others; run: chmod 600"):
        keys.resolve(path)
    monkeypatch.setenv(keys.DEFAULT_ENV, "from-the-environment")
    assert keys.resolve(path) == "from-the-environment"
