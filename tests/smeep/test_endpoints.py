"""Any OpenAI-compatible or Ollama endpoint: the base URL is used as given (a path such as /api/v1 included) and
the API key comes from an environment variable as a bearer token, never into the results."""

from __future__ import annotations

import json

from smeep import cli
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.doubles.engine import FakeLlamaCpp, FakeOllama, say
from tests.doubles.http import running

SECRET = "s3cret-key-for-tests"


class Behind:
    """The fake engine behind a proxy path prefix; records each request's path and Authorization header."""

    def __init__(self, prefix: str, app: ASGIApp) -> None:
        self.app = Starlette(routes=[Mount(prefix, app=app)])
        self.seen: list[tuple[str, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.seen.append((scope["path"], headers.get("authorization")))
        await self.app(scope, receive, send)


def _ladder(url: str, out, *more: str) -> int:
    return cli.main(["ladder", "--tasks", "t1-ping", "--engine", url, "--model", "pinger", "--output", str(out),
                     "--no-progress", "--no-plots", *more])  # fmt: skip


def test_openai_base_url_with_a_path_and_a_key_from_a_named_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_ENDPOINT_KEY", SECRET)
    proxy = Behind("/api", FakeLlamaCpp(served=["pinger"], scripts={"pinger": [say("pong")]}).app())
    out = tmp_path / "r.json"
    with running(proxy) as url:
        assert _ladder(url + "/api/v1", out, "--api-key-env", "MY_ENDPOINT_KEY") == 0
    assert ("/api/v1/chat/completions", f"Bearer {SECRET}") in proxy.seen
    assert all(path.startswith("/api/v1/") and auth == f"Bearer {SECRET}" for path, auth in proxy.seen), proxy.seen
    doc = json.loads(out.read_text())
    assert doc["runs"]["pinger"]["t1-ping"]["status"] == "PASS"
    assert doc["engine"]["url"] == url + "/api/v1" and doc["engine"]["api_key_env"] == "MY_ENDPOINT_KEY"
    assert SECRET not in out.read_text() + out.with_suffix(".jsonl").read_text()


def test_ollama_behind_a_path_with_the_default_key_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SMEEP_API_KEY", SECRET)
    fake = FakeOllama(models={}, loaded={}, scripts={"pinger": [say("pong")]})
    proxy = Behind("/ollama", fake.app())
    out = tmp_path / "r.json"
    with running(proxy) as url:
        assert _ladder(url + "/ollama", out) == 0
    assert ("/ollama/api/chat", f"Bearer {SECRET}") in proxy.seen
    assert all(path.startswith("/ollama/api/") and auth == f"Bearer {SECRET}" for path, auth in proxy.seen)
    assert json.loads(out.read_text())["runs"]["pinger"]["t1-ping"]["status"] == "PASS"


def test_a_named_key_variable_that_is_not_set_stops_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    assert _ladder("http://127.0.0.1:9/v1", tmp_path / "r.json", "--api-key-env", "NOT_SET_ANYWHERE") == 2
    assert "NOT_SET_ANYWHERE" in capsys.readouterr().err
