"""Every operation of the OpenAPI schema with inputs generated from it (schemathesis, bounded): no answer is a
server error, and every error is in the documented shape. Authenticated: the console's session token, or a
gateway client's key under ``/v1``; the fake providers answer whatever a generated message asks."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from claw.threadweaver.__main__ import build_console, build_gateway
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from hypothesis import HealthCheck, Phase, given, settings

from tests.doubles.providers import FakeOpenAI, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

AGENT_KEY = "sk-tw-fuzz-agent-0123456789"
MAX_EXAMPLES = 20  # per operation: about 25 s for the whole schema on two cores


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "fa" * 32)
    (tmp_path / "agent.key").write_text(AGENT_KEY)
    config = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {"openai": {"kind": "openai", "base_url": "https://openai.test/v1", "models": ["m"]}},
            "gateway": {"clients": {"agent": {"key_file": str(tmp_path / "agent.key")}}},
        }
    )
    console = build_console(config, transports={"openai": FakeOpenAI(Reply("fuzzed")).transport()})
    console_sessions = sessions()
    app = create_app(console, console_sessions, gateway=build_gateway(config, console))
    token = console_sessions.login(PASSWORD)
    yield app, token
    console.store.close()


def test_no_operation_answers_with_a_server_error(api):
    app, token = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    calls: list[int] = []
    for operation in operations:
        check(operation, AGENT_KEY if operation.path.startswith("/v1") else token, calls)
    assert len(calls) >= 5 * len(operations)


def check(operation: Any, key: str, calls: list[int]) -> None:
    """The operation with generated inputs, sent with ``key``."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same inputs every run: a failure here is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        calls.append(response.status_code)
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            body = response.json()
            assert "detail" not in body and set(body["error"]) >= {"code", "message"}, f"{where}: {body}"

    no_server_error()
