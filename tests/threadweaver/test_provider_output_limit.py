"""A provider's own output limit (``max_output_tokens`` in its config) bounds every reply, whatever is asked.

The demo model's short replies rely on it: the console's default limit is 1,024 tokens, the crush provider's 96.
"""

from __future__ import annotations

import pytest
from claw.threadweaver import config
from claw.threadweaver.__main__ import build_adapters
from claw.threadweaver.providers import build
from claw.threadweaver.providers.model import Message, Request


def _request(max_output_tokens: int | None) -> Request:
    return Request(model="m", messages=[Message("user", "hi")], max_output_tokens=max_output_tokens)


@pytest.mark.parametrize(
    ("kind", "engine", "field"),
    [
        ("crush", "llamacpp", "max_tokens"),
        ("openai", "ollama", "max_completion_tokens"),
        ("anthropic", "ollama", "max_tokens"),
    ],
)
@pytest.mark.parametrize(("asked", "limit", "sent"), [(1024, 96, 96), (50, 96, 50), (None, 96, 96), (1024, None, 1024)])
def test_the_smaller_of_asked_and_limit_is_sent(kind, engine, field, asked, limit, sent):
    provider = build("p", kind, "http://engine.test/v1", engine=engine, max_output_tokens=limit)
    body = provider.build_body(_request(asked), stream=False)
    assert body[field] == sent


def test_ollama_gets_the_limit_as_num_predict_beside_the_reply_options():
    provider = build(
        "crush", "crush", "http://crush.test:11434", engine="ollama",
        max_output_tokens=96, extra_body={"options": {"stop": ["\n\n"], "repeat_penalty": 1.3}},
    )  # fmt: skip
    body = provider.build_body(_request(1024), stream=True)
    assert body["options"] == {"stop": ["\n\n"], "repeat_penalty": 1.3, "num_predict": 96}


def test_no_limit_and_nothing_asked_sends_no_limit():
    provider = build("crush", "crush", "http://crush.test:8080/v1", engine="llamacpp")
    assert "max_tokens" not in provider.build_body(_request(None), stream=False)


def test_the_config_carries_the_limit_to_the_adapter_and_refuses_nonsense():
    settings = config.Settings.model_validate(
        {"port": 8600,
         "providers": {"crush": {"kind": "crush", "base_url": "http://crush.test:8080/v1", "engine": "llamacpp",
                                 "max_output_tokens": 96, "extra_body": {"stop": ["<end_of_turn>"]}}}}
    )  # fmt: skip
    adapter = build_adapters(settings)["crush"]
    body = adapter.build_body(_request(1024), stream=False)
    assert body["max_tokens"] == 96 and body["stop"] == ["<end_of_turn>"]
    with pytest.raises(ValueError, match="max_output_tokens"):
        config.ProviderConfig.model_validate({"kind": "crush", "max_output_tokens": 0})
