"""Each adapter against a fake speaking the provider's real wire format: bodies sent, replies and streams parsed,
errors mapped; and a thread's history moving from one provider to another."""

from __future__ import annotations

import pytest
from claw.threadweaver.providers import errors
from claw.threadweaver.providers.model import Message, Request, ToolCall, ToolSpec

from tests.doubles.engine import FakeOllama
from tests.doubles.providers import FakeAnthropic, FakeGroq, FakeMistral, FakeOpenAI, Reply, adapter

pytestmark = pytest.mark.anyio
ALL = [FakeOpenAI, FakeAnthropic, FakeMistral, FakeGroq, FakeOllama]
WEATHER = ToolSpec("weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def ask(text: str = "hello there", **options) -> Request:
    return Request("m1", [Message("system", "be brief"), Message("user", text)], **options)


async def collect(provider, request):
    return [chunk async for chunk in provider.stream(request)]


@pytest.mark.parametrize("fake_class", ALL, ids=lambda c: c.kind)
async def test_complete_and_stream_give_the_same_normalized_reply(fake_class):
    fake = fake_class(Reply("Hello from the fake provider", input_tokens=12, output_tokens=5))
    provider = adapter(fake)
    result = await provider.complete(ask(max_output_tokens=64))
    assert (result.text, result.finish_reason, result.tool_calls) == ("Hello from the fake provider", "stop", [])
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 5)
    chunks = await collect(provider, ask(max_output_tokens=64))
    assert [c.text for c in chunks[:-1]] == ["Hello ", "from ", "the ", "fake ", "provider"]
    last = chunks[-1]
    assert last.done and last.finish_reason == "stop"
    assert (last.usage.input_tokens, last.usage.output_tokens) == (12, 5)
    await provider.aclose()


@pytest.mark.parametrize("fake_class", ALL, ids=lambda c: c.kind)
async def test_tool_calls_are_parsed_with_dict_arguments_streamed_or_not(fake_class):
    call = {"name": "weather", "arguments": {"city": "Paris", "days": 2}}
    fake = fake_class(Reply("", tool_calls=[call]))
    provider = adapter(fake)
    result = await provider.complete(ask(tools=[WEATHER]))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("weather", {"city": "Paris", "days": 2})]
    assert result.finish_reason == "tool_calls" and result.tool_calls[0].id
    last = (await collect(provider, ask(tools=[WEATHER])))[-1]
    assert [(c.name, c.arguments) for c in last.tool_calls] == [("weather", {"city": "Paris", "days": 2})]
    assert last.finish_reason == "tool_calls"


async def test_request_bodies_follow_each_wire_format():
    request = ask(max_output_tokens=99, tools=[WEATHER], temperature=0.2)
    openai, anthropic, mistral, groq, ollama = (cls(Reply("ok")) for cls in ALL)
    for fake in (openai, anthropic, mistral, groq, ollama):
        await adapter(fake).complete(request)
    body = openai.bodies[0]
    assert body["max_completion_tokens"] == 99 and body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["tools"][0]["type"] == "function" and body["tools"][0]["function"]["name"] == "weather"
    assert openai.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    body = anthropic.bodies[0]
    assert body["system"] == "be brief" and body["max_tokens"] == 99
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert body["tools"][0]["input_schema"] == WEATHER.parameters
    assert anthropic.requests[0]["headers"]["x-api-key"] == "sk-test"
    assert mistral.bodies[0]["max_tokens"] == 99 and "max_completion_tokens" not in mistral.bodies[0]
    body = ollama.bodies[0]
    assert body["options"] == {"num_predict": 99, "temperature": 0.2} and body["stream"] is False
    assert ollama.requests[0][:2] == ("POST", "/api/chat")


async def test_anthropic_requires_max_tokens_so_a_default_is_sent():
    fake = FakeAnthropic(Reply("ok"))
    await adapter(fake).complete(ask())
    assert fake.bodies[0]["max_tokens"] == 1024


async def test_streams_ask_for_usage_only_where_the_provider_takes_it():
    fakes = {cls.kind: cls(Reply("a b")) for cls in (FakeOpenAI, FakeMistral, FakeGroq)}
    for fake in fakes.values():
        await collect(adapter(fake), ask())
    assert fakes["openai"].bodies[0]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in fakes["mistral"].bodies[0]
    assert "stream_options" not in fakes["groq"].bodies[0]


async def test_groq_drops_the_fields_it_rejects():
    fake = FakeGroq(Reply("fine"))
    provider = adapter(fake, extra_body={"logprobs": True, "top_logprobs": 2, "n": 3, "seed": 7})
    result = await provider.complete(ask())
    assert result.text == "fine"
    assert fake.bodies[0]["seed"] == 7
    assert not {"logprobs", "top_logprobs", "n"} & set(fake.bodies[0])


# -- a thread that moves between providers ---------------------------------------------------------------------

OPENAI_TURN = [
    Message("system", "You are a weather bot."),
    Message("user", "Weather in Paris and Rome?"),
    Message(
        "assistant",
        "Let me check.",
        tool_calls=[
            ToolCall("call_Xy7pQ2abcDEF0123", "weather", {"city": "Paris"}),
            ToolCall("call_Zz9pQ2abcDEF4567", "weather", {"city": "Rome"}),
        ],
    ),
    Message.tool_result("call_Xy7pQ2abcDEF0123", "weather", "18C sunny"),
    Message.tool_result("call_Zz9pQ2abcDEF4567", "weather", "24C clear"),
    Message("assistant", "Paris 18C, Rome 24C."),
    Message("user", "And tomorrow?"),
]


async def test_openai_shaped_history_with_tool_calls_is_sent_correctly_to_anthropic():
    fake = FakeAnthropic(Reply("Similar."))
    result = await adapter(fake).complete(Request("claude-x", OPENAI_TURN, max_output_tokens=200))
    assert result.text == "Similar."
    assert fake.bodies[0] == {
        "model": "claude-x",
        "max_tokens": 200,
        "system": "You are a weather bot.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_Xy7pQ2abcDEF0123", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_Zz9pQ2abcDEF4567", "name": "weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_Xy7pQ2abcDEF0123", "content": "18C sunny"},
                    {"type": "tool_result", "tool_use_id": "call_Zz9pQ2abcDEF4567", "content": "24C clear"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Paris 18C, Rome 24C."}]},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
        ],
    }


async def test_openai_shaped_history_with_tool_calls_is_sent_correctly_to_mistral():
    fake = FakeMistral(Reply("Similar."))
    result = await adapter(fake).complete(Request("mistral-small", OPENAI_TURN))
    assert result.text == "Similar."
    messages = fake.bodies[0]["messages"]
    paris, rome = (call["id"] for call in messages[2]["tool_calls"])
    assert len(paris) == len(rome) == 9 and paris.isalnum() and rome.isalnum() and paris != rome
    assert messages == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": paris, "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
                {"id": rome, "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": paris, "content": "18C sunny", "name": "weather"},
        {"role": "tool", "tool_call_id": rome, "content": "24C clear", "name": "weather"},
        {"role": "assistant", "content": "Paris 18C, Rome 24C."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    # The same history again maps to the same ids (stable across turns).
    await adapter(fake).complete(Request("mistral-small", OPENAI_TURN))
    assert fake.bodies[1] == fake.bodies[0]


async def test_mistral_ids_are_mapped_back_when_echoed():
    from claw.threadweaver.providers.mistral import short_id

    echoed = short_id("call_Xy7pQ2abcDEF0123")
    fake = FakeMistral(Reply("", tool_calls=[{"id": echoed, "name": "weather", "arguments": {"city": "Paris"}}]))
    result = await adapter(fake).complete(Request("mistral-small", OPENAI_TURN))
    assert result.tool_calls[0].id == "call_Xy7pQ2abcDEF0123"


async def test_anthropic_tool_history_goes_to_openai_and_ollama():
    history = [
        Message("user", "weather?"),
        Message("assistant", "", tool_calls=[ToolCall("toolu_01AbC", "weather", {"city": "Oslo"})]),
        Message.tool_result("toolu_01AbC", "weather", "-3C"),
    ]
    openai, ollama = FakeOpenAI(Reply("cold")), FakeOllama(Reply("cold"))
    await adapter(openai).complete(Request("gpt", history))
    await adapter(ollama).complete(Request("qwen3", history))
    assert openai.bodies[0]["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01AbC",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01AbC", "content": "-3C"},
    ]
    assert ollama.bodies[0]["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "-3C", "tool_name": "weather"},
    ]


# -- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fake_class", [c for c in ALL if c is not FakeOllama], ids=lambda c: c.kind)
async def test_unreachable_is_reported_as_such(fake_class):
    # Crush words a refused connection as its engine being down (test_crush_errors_use_the_crush_vocabulary).
    fake = fake_class()
    fake.down = True
    with pytest.raises(errors.ProviderUnreachable, match="connection refused"):
        await adapter(fake).complete(ask())


async def test_auth_rate_limit_and_bad_request_carry_the_providers_message():
    openai = FakeOpenAI(
        Reply(
            status=401,
            error={
                "error": {
                    "message": "Incorrect API key provided: sk-test.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    with pytest.raises(errors.ProviderAuthError, match="Incorrect API key provided"):
        await adapter(openai).complete(ask())
    anthropic = FakeAnthropic(
        Reply(
            status=429,
            error={
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "Number of request tokens has exceeded your per-minute rate limit",
                },
            },
        )
    )
    with pytest.raises(errors.ProviderRateLimited, match="per-minute rate limit"):
        await adapter(anthropic).complete(ask())
    overloaded = FakeAnthropic(
        Reply(status=529, error={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )
    with pytest.raises(errors.ProviderDown, match="HTTP 529: Overloaded"):
        await adapter(overloaded).complete(ask())
    mistral = FakeMistral(
        Reply(
            status=400,
            error={
                "object": "error",
                "message": "Invalid model: mistral-huge",
                "type": "invalid_model",
                "code": "1500",
            },
        )
    )
    with pytest.raises(
        errors.ProviderBadRequest, match=r"rejected the request \(HTTP 400\): Invalid model: mistral-huge"
    ):
        await adapter(mistral).complete(ask())


async def test_crush_errors_use_the_crush_vocabulary():
    fake = FakeOllama(Reply(status=404, error={"error": 'model "m1" not found, try pulling it first'}))
    with pytest.raises(errors.ProviderBadRequest, match="model 'm1' is not on the crush node") as caught:
        await adapter(fake).complete(ask())
    assert caught.value.crush_code == "model_missing"
    fake = FakeOllama(mode="refused")
    with pytest.raises(errors.ProviderDown, match=r"nothing listens on .* stopped or still starting") as caught:
        await adapter(fake).complete(ask())
    assert caught.value.crush_code == "engine_down"


async def test_an_error_event_mid_stream_is_raised():
    fake = FakeAnthropic(Reply("partial words here"))
    original = fake.stream

    def broken(reply, body):
        response = original(reply, body)
        content = response.content.split(b"event: content_block_stop")[0]
        content += (
            b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
        )
        return type(response)(200, content=content, headers=response.headers)

    fake.stream = broken
    chunks = []
    with pytest.raises(errors.ProviderError, match="failed mid-stream: Overloaded"):
        async for chunk in adapter(fake).stream(ask()):
            chunks.append(chunk.text)
    assert "".join(chunks) == "partial words here"
