"""The web UI's serving side: the page and its static files, the security headers, /providers, the login cookie,
and a new first message (``root``) for "edit & branch" on a thread's first message."""

from __future__ import annotations

import re

import pytest
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import CSP, STATIC, create_app
from claw.threadweaver.config import Settings
from fastapi.testclient import TestClient

from tests.doubles.engine import FakeOllama
from tests.doubles.providers import FakeAnthropic, Reply
from tests.threadweaver.console_login import PASSWORD, sessions


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("THREADWEAVER_STORE_KEY", "cd" * 32)
    settings = Settings.model_validate(
        {
            "port": 8600,
            "store": {"path": str(tmp_path / "threads.db"), "key_file": None},
            "providers": {
                "crush": {"kind": "crush", "base_url": "http://crush.test:11434", "models": ["qwen3:8b", "gemma3"]},
                "claude": {"kind": "anthropic", "base_url": "https://anthropic.test", "api_key_env": "TW_KEY"},
            },
        }
    )
    monkeypatch.setenv("TW_KEY", "sk-ant-test")
    fakes = {"crush": FakeOllama(Reply("from crush")), "claude": FakeAnthropic(Reply("from claude"))}
    console = build_console(settings, transports={name: fake.transport() for name, fake in fakes.items()})
    yield create_app(console, sessions())
    console.store.close()


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://tw") as http:
        yield http


def logged_in(client: TestClient) -> TestClient:
    assert client.post("/login", json={"password": PASSWORD}).status_code == 200
    return client


def test_the_page_and_its_files_are_served_without_a_session(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    for name, kind in [
        ("app.js", "javascript"),
        ("api.js", "javascript"),
        ("dom.js", "javascript"),
        ("tree.js", "javascript"),
        ("status.js", "javascript"),
        ("style.css", "text/css"),
    ]:
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"], name
        assert response.headers["cache-control"] == "no-cache"
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/../app.py").status_code == 404


def test_the_page_needs_no_inline_script_or_style():
    html = (STATIC / "index.html").read_text()
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)  # no inline event handlers
    scripts = "".join(p.read_text() for p in STATIC.glob("*.js"))
    assert ".innerHTML" not in scripts and "insertAdjacentHTML" not in scripts and "eval(" not in scripts


def test_security_headers_on_every_response(client):
    for response in (client.get("/"), client.get("/static/app.js"), client.get("/healthz"), client.get("/threads")):
        headers = response.headers
        assert headers["content-security-policy"] == CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


def test_providers_lists_the_configured_ones_with_their_models(client):
    assert client.get("/providers").status_code == 401
    assert logged_in(client).get("/providers").json() == [
        {"name": "claude", "kind": "anthropic", "models": []},
        {"name": "crush", "kind": "crush", "models": ["qwen3:8b", "gemma3"]},
    ]


def test_the_login_cookie_is_secure_over_https(app):
    with TestClient(app, base_url="http://tw") as plain:
        cookie = plain.post("/login", json={"password": PASSWORD}).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    with TestClient(app, base_url="https://tw") as tls:
        cookie = tls.post("/login", json={"password": PASSWORD}).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "; secure" in cookie


def test_root_starts_a_new_first_message(client):
    http = logged_in(client)
    thread = http.post("/threads", json={"provider": "crush", "model": "qwen3:8b"}).json()
    first = http.post(f"/threads/{thread['id']}/messages", json={"content": "one"}).json()
    again = http.post(f"/threads/{thread['id']}/messages", json={"content": "uno", "root": True}).json()
    assert first["user"]["parent_id"] is None and again["user"]["parent_id"] is None
    follow = http.post(f"/threads/{thread['id']}/messages", json={"content": "next"}).json()
    assert follow["user"]["parent_id"] == again["reply"]["id"]  # without root: the newest leaf, as before
