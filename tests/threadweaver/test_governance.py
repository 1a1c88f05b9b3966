"""Prices, spend caps (nothing leaves once a cap is reached), fallback routing, history budget, hooks."""

from __future__ import annotations

import pytest
from claw.threadweaver.console import Console, Limits
from claw.threadweaver.governance import Governance, PriceTable, SpendCapReached, trim_history
from claw.threadweaver.hooks import HookBlocked, HookFailed, Hooks
from claw.threadweaver.ledger import Ledger
from claw.threadweaver.providers.errors import ProviderUnreachable
from claw.threadweaver.providers.model import Message, ToolCall, Usage
from claw.threadweaver.router import Router
from claw.threadweaver.store import ThreadStore

from tests.doubles.providers import FakeAnthropic, FakeOpenAI, Reply, adapter

pytestmark = pytest.mark.anyio
PRICES = {"openai": {"gpt-4o-mini": (0.15, 0.60), "*": (5.0, 15.0)}, "anthropic": {"*": {"input": 3, "output": 15}}}


@pytest.fixture
def store(tmp_path):
    with ThreadStore(tmp_path / "t.db", "k" * 64) as opened:
        yield opened


def make_console(store, fakes, caps=None, hooks=None, limits=None):
    governance = Governance(Ledger(store.db), PriceTable(PRICES), caps or {})
    router = Router({name: adapter(fake, name) for name, fake in fakes.items()}, governance)
    return Console(store, router, governance, hooks, limits=limits)


def test_price_table():
    table = PriceTable(PRICES)
    assert table.cost("openai", "gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert table.cost("openai", "o3", Usage(2_000, 1_000)) == pytest.approx(0.025)
    assert table.cost("anthropic", "claude", Usage(1_000_000, 0)) == 3.0
    assert table.cost("crush", "gemma3", Usage(10**9, 10**9)) == 0.0


async def test_cost_is_recorded_and_a_provider_cap_stops_requests_before_they_leave(store):
    openai = FakeOpenAI(Reply("hi", input_tokens=1_000_000, output_tokens=0))  # $0.15 a reply
    console = make_console(store, {"openai": openai}, caps={"openai": 0.30})
    thread = store.create_thread("openai", "gpt-4o-mini")
    for _ in range(2):
        turn = await console.post(thread.id, "hello")
        assert turn.reply.cost_usd == pytest.approx(0.15)
    assert openai.count == 2
    with pytest.raises(SpendCapReached, match=r"spend cap for provider openai is reached \(\$0.3000 of \$0.3000\)"):
        await console.post(thread.id, "one more")
    with pytest.raises(SpendCapReached):
        await console.stream(thread.id, "streamed too")
    assert openai.count == 2  # nothing left after the cap
    last_user, note = store.path(store.latest_leaf(thread.id).id)[-2:]
    assert last_user.content == "streamed too" and note.role == "note" and "spend_cap_reached" in note.content


async def test_a_thread_cap(store):
    openai = FakeOpenAI(Reply("hi", input_tokens=1_000_000, output_tokens=0))
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "gpt-4o-mini", cap_usd=0.1)
    await console.post(thread.id, "hello")
    with pytest.raises(SpendCapReached, match="spend cap for thread"):
        await console.post(thread.id, "again")
    assert openai.count == 1
    other = store.create_thread("openai", "gpt-4o-mini")  # other threads are not capped
    await console.post(other.id, "hello")
    assert openai.count == 2


async def test_fallback_only_when_the_chosen_provider_is_unreachable(store):
    openai, anthropic = FakeOpenAI(Reply("from openai")), FakeAnthropic(Reply("from anthropic"))
    console = make_console(store, {"openai": openai, "anthropic": anthropic})
    thread = store.create_thread("openai", "gpt-4o-mini", fallback_provider="anthropic", fallback_model="claude-x")
    turn = await console.post(thread.id, "hi")
    assert (turn.reply.content, turn.reply.provider, anthropic.count) == ("from openai", "openai", 0)
    openai.down = True
    turn = await console.post(thread.id, "hi again")
    assert (turn.reply.content, turn.reply.provider, turn.reply.model) == ("from anthropic", "anthropic", "claude-x")
    events = [e async for e in await console.stream(thread.id, "streamed")]
    assert events[-1]["provider"] == "anthropic"
    openai.down = False
    openai.replies = [Reply(status=400, error={"error": {"message": "bad", "type": "invalid_request_error"}})]
    with pytest.raises(Exception, match="rejected the request"):
        await console.post(thread.id, "bad request: no fallback")
    assert anthropic.count == 2


async def test_no_fallback_configured_reports_the_outage_and_keeps_the_user_message(store):
    openai = FakeOpenAI()
    openai.down = True
    console = make_console(store, {"openai": openai})
    thread = store.create_thread("openai", "m")
    with pytest.raises(ProviderUnreachable):
        await console.post(thread.id, "are you there?")
    user, note = store.messages(thread.id)
    assert user.content == "are you there?" and note.role == "note" and "provider_unreachable" in note.content


async def test_max_output_tokens_is_sent(store):
    openai = FakeOpenAI(Reply("ok"))
    console = make_console(store, {"openai": openai}, limits=Limits(max_output_tokens=321))
    await console.post(store.create_thread("openai", "m").id, "x")
    await console.post(store.create_thread("openai", "m", max_output_tokens=50).id, "x")
    assert [b["max_completion_tokens"] for b in openai.bodies] == [321, 50]


def test_history_budget_keeps_the_system_message_and_the_newest_whole_turns():
    history = [Message("system", "s" * 40)]
    for n in range(6):
        history += [Message("user", f"q{n} " + "x" * 100), Message("assistant", f"a{n} " + "y" * 100)]
    history += [
        Message("user", "weather?"),
        Message("assistant", "", tool_calls=[ToolCall("c1", "weather", {"city": "Oslo"})]),
        Message.tool_result("c1", "weather", "-3C"),
    ]
    kept = trim_history(history, budget_tokens=120)
    assert kept[0].role == "system"
    assert [m.content[:2] for m in kept[1:]] == ["q5", "a5", "we", "", "-3"]
    assert [m.content[:2] for m in trim_history(history, max_turns=2)[1:]] == ["q5", "a5", "we", "", "-3"]
    assert trim_history(history, budget_tokens=1)[1:] == history[-3:]  # the newest turn always goes


async def test_history_sent_is_trimmed(store):
    openai = FakeOpenAI(Reply("ok"))
    console = make_console(store, {"openai": openai}, limits=Limits(max_history_turns=2))
    thread = store.create_thread("openai", "m", system_prompt="be brief")
    for n in range(4):
        await console.post(thread.id, f"q{n}")
    assert [m["content"] for m in openai.bodies[-1]["messages"]] == ["be brief", "q2", "ok", "q3"]


# -- hooks -----------------------------------------------------------------------------------------------------


def write_hooks(tmp_path, **files):
    directory = tmp_path / "hooks"
    directory.mkdir()
    for name, source in files.items():
        (directory / f"{name}.py").write_text(source)
    return Hooks.from_directory(directory)


REDACT = """
import re
def post_receive(context):
    return re.sub(r"\\b\\d{4}-\\d{4}\\b", "[redacted]", context.text)
"""
BLOCK = """
from claw.threadweaver.hooks import HookBlocked
def post_receive(context):
    if "launch code" in context.text:
        raise HookBlocked("the reply mentions launch codes")
"""


async def test_post_receive_redacts_and_blocks_before_the_user_sees_the_text(store, tmp_path):
    hooks = write_hooks(tmp_path, a_redact=REDACT, b_block=BLOCK)
    openai = FakeOpenAI(Reply("your pin is 1234-5678 ok"), Reply("the launch code is 0000"))
    console = make_console(store, {"openai": openai}, hooks=hooks)
    thread = store.create_thread("openai", "m")
    turn = await console.post(thread.id, "pin?")
    assert turn.reply.content == "your pin is [redacted] ok"
    with pytest.raises(HookBlocked, match=r"blocked by hook b_block\.py: the reply mentions launch codes"):
        await console.post(thread.id, "code?")
    assert "launch code is" not in str([m.content for m in store.messages(thread.id)])
    assert not store.search("0000")


async def test_streaming_with_post_receive_hooks_holds_the_text_back(store, tmp_path):
    hooks = write_hooks(tmp_path, a_redact=REDACT)
    console = make_console(store, {"openai": FakeOpenAI(Reply("pin 1234-5678 here"))}, hooks=hooks)
    thread = store.create_thread("openai", "m")
    events = [e async for e in await console.stream(thread.id, "pin?")]
    assert [e["text"] for e in events if e["type"] == "chunk"] == ["pin [redacted] here"]
    assert store.message(events[-1]["message_id"]).content == "pin [redacted] here"


async def test_on_chunk_hooks_check_each_chunk_before_it_is_sent(store, tmp_path):
    hooks = write_hooks(
        tmp_path,
        upper="def on_chunk(context):\n    return context.chunk.upper()\n",
        z_stop="""
from claw.threadweaver.hooks import HookBlocked
def on_chunk(context):
    if "SECRET" in context.chunk:
        raise HookBlocked("secret word")
""",
    )
    openai = FakeOpenAI(Reply("one two three"), Reply("one secret three"))
    console = make_console(store, {"openai": openai}, hooks=hooks)
    thread = store.create_thread("openai", "m")
    events = [e async for e in await console.stream(thread.id, "count")]
    assert [e["text"] for e in events if e["type"] == "chunk"] == ["ONE ", "TWO ", "THREE"]
    events = [e async for e in await console.stream(thread.id, "again")]
    assert [e.get("text") for e in events if e["type"] == "chunk"] == ["ONE "]
    assert events[-1] == {"type": "error", "code": "hook_blocked", "message": "blocked by hook z_stop.py: secret word"}
    note = store.latest_leaf(thread.id)
    reply, same_note = store.children(note.parent_id)
    assert (reply.role, reply.status, reply.content) == ("assistant", "blocked", "")
    assert same_note.id == note.id and note.content == "hook_blocked: blocked by hook z_stop.py: secret word"


async def test_a_failing_hook_is_a_clear_note_and_the_user_message_stays(store, tmp_path):
    hooks = write_hooks(tmp_path, broken="def pre_send(context):\n    return 1 / 0\n")
    openai = FakeOpenAI(Reply("never"))
    console = make_console(store, {"openai": openai}, hooks=hooks)
    thread = store.create_thread("openai", "m")
    with pytest.raises(HookFailed, match=r"hook broken\.py failed in pre_send: ZeroDivisionError: division by zero"):
        await console.post(thread.id, "keep me")
    user, note = store.messages(thread.id)
    assert user.content == "keep me" and note.role == "note" and "hook broken.py failed" in note.content
    assert openai.count == 0


async def test_pre_send_hooks_can_change_what_is_sent(store, tmp_path):
    hooks = write_hooks(tmp_path, tag="def pre_send(context):\n    context.messages[-1].content += ' (via console)'\n")
    openai = FakeOpenAI(Reply("ok"))
    await make_console(store, {"openai": openai}, hooks=hooks).post(store.create_thread("openai", "m").id, "hi")
    assert openai.bodies[0]["messages"][-1]["content"] == "hi (via console)"
