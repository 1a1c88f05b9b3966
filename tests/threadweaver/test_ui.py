"""The web UI in headless Chromium (Debian's chromium + chromium-driver), against the real app served by uvicorn
with fake providers: login, a streamed reply, branches, search, spend, XSS-safe rendering, a thread's cap, rename
and delete, the status panel.

The fake Anthropic paces its SSE events, so the test can see the reply grow before ``done``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from claw.threadweaver.__main__ import build_console
from claw.threadweaver.app import create_app
from claw.threadweaver.config import Settings
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.doubles.engine import FakeOllama
from tests.doubles.providers import FakeAnthropic, Reply
from tests.threadweaver.console_login import PASSWORD, sessions

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (make pytest installs them)",
)

ANSWER = "Weaving threads is a craft of many small steps taken one after another"
STATUS = {
    "nodes": [{"name": "claw", "role": "console", "up": True}, {"name": "crush", "role": "inference", "up": False}],
    "models": [{"name": "qwen3:8b", "loaded": True}],
    "leds": {"state": "busy", "detail": "generating"},
    "alerts": [{"name": "CrushDown", "severity": "critical", "summary": "crush has not answered for 5m"}],
    "series": {
        "power_watts": [[0, 10.0], [60, 14.5], [120, 12.0]],
        "gpu_load": [[0, 5], [60, 80], [120, 40]],
        "tokens_per_s": [[0, 0], [60, 22.5], [120, 18]],
        "temperature_c": [[0, 41], [60, 52], [120, 49]],
    },
}


class PacedAnthropic(FakeAnthropic):
    """The fake Anthropic, with its SSE events sent one by one, ``delay`` seconds apart."""

    delay = 0.12

    def stream(self, reply: Reply, body: dict[str, Any]) -> httpx.Response:
        whole = super().stream(reply, body).content
        blocks = [block + b"\n\n" for block in whole.split(b"\n\n") if block]

        async def paced() -> AsyncIterator[bytes]:
            for block in blocks:
                await asyncio.sleep(self.delay)
                yield block

        return httpx.Response(200, content=paced(), headers={"content-type": "text/event-stream"})


class Server:
    """The app on a free loopback port, in a thread, with a switchable stub for GET /status."""

    def __init__(self, tmp: Path) -> None:
        settings = Settings.model_validate(
            {
                "port": 8600,
                "store": {"path": str(tmp / "threads.db"), "key_file": None},
                "providers": {
                    "claude": {
                        "kind": "anthropic",
                        "base_url": "https://anthropic.test",
                        "api_key_env": "ANTHROPIC_API_KEY",
                        "models": ["claude-x"],
                    },
                    "crush": {"kind": "crush", "base_url": "http://crush.test:11434", "models": ["qwen3:8b"]},
                },
                "prices": {"claude": {"*": [3, 15]}},
            }
        )
        self.claude = PacedAnthropic(Reply(ANSWER))
        self.crush = FakeOllama(Reply("from crush"))
        transports = {"claude": self.claude.transport(), "crush": self.crush.transport()}
        self.console = build_console(settings, transports=transports)
        self.app = create_app(self.console, sessions())
        self.status: dict[str, Any] | None = None
        # Ahead of every other route, so it wins over a real /status when the app has one.
        self.app.router.routes.insert(0, APIRoute("/status", self._status, methods=["GET"]))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _status(self) -> JSONResponse:
        if self.status is None:
            return JSONResponse({"error": {"code": "unavailable", "message": "no data yet"}}, status_code=503)
        return JSONResponse(self.status)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.console.store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, monkeypatch_module) -> Iterator[Server]:
    monkeypatch_module.setenv("THREADWEAVER_STORE_KEY", "ef" * 32)
    monkeypatch_module.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with Server(tmp_path_factory.mktemp("ui")) as running:
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # No network here: without these Chromium waits on update, sync and QUIC connections that never come.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()


def wait(driver: Any, condition: Any, timeout: float = 10) -> Any:
    waiting = WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException, IndexError]
    )
    try:
        return waiting.until(condition)
    except TimeoutException:
        # What the page showed and logged: a bare timeout says nothing.
        shown = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"timed out; page text:\n{shown}\nconsole: {driver.get_log('browser')}") from None


def visible(driver: Any, css: str) -> Any:
    return wait(driver, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None))


def texts(driver: Any, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def send(driver: Any, text: str) -> None:
    box = visible(driver, "#prompt")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def streamed_text(driver: Any) -> list[str]:
    """What the streaming reply shows at each poll, until the stream ends and the thread reloads."""
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.streaming"))
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            live = driver.find_elements(By.CSS_SELECTOR, ".msg.streaming .text")
            if not live:
                return seen
            seen.append(live[0].text)
        except StaleElementReferenceException:
            return seen
        time.sleep(0.05)
    raise AssertionError("the reply did not finish streaming")


def login(driver: Any, server: Server) -> None:
    driver.get(server.url + "/")
    # The page shows the app (the cookie is still good) or the login screen; which one only the server knows.
    shown = visible(driver, "#app, #password")
    if shown.get_attribute("id") == "password":
        shown.send_keys(PASSWORD + "\n")
    visible(driver, "#app")


def new_thread(driver: Any, provider: str, title: str) -> None:
    driver.find_element(By.CSS_SELECTOR, "#new-thread summary").click()
    Select(visible(driver, "#new-provider")).select_by_value(provider)
    driver.find_element(By.ID, "new-title").send_keys(title)
    driver.find_element(By.CSS_SELECTOR, "#new-thread-form button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "thread-title").text == title)


def test_login_refuses_a_wrong_password(browser, server):
    browser.delete_all_cookies()
    browser.get(server.url + "/")
    visible(browser, "#password").send_keys("not the password\n")
    wait(browser, lambda d: d.find_element(By.ID, "login-error").text == "Wrong password.")
    assert not browser.find_element(By.ID, "app").is_displayed()
    box = browser.find_element(By.ID, "password")
    box.clear()
    box.send_keys(PASSWORD + "\n")
    visible(browser, "#app")
    assert browser.find_element(By.ID, "login-error").text == ""
    cookie = browser.get_cookie("threadweaver_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_streamed_conversation_with_branches_search_and_spend(browser, server):
    login(browser, server)
    new_thread(browser, "claude", "Weaving")
    assert Select(browser.find_element(By.ID, "thread-provider")).first_selected_option.text == "claude"
    assert browser.find_element(By.ID, "thread-model").get_attribute("value") == "claude-x"

    send(browser, "how do you weave?")
    seen = [text for text in streamed_text(browser) if text]
    assert len(set(seen)) >= 3, f"the reply did not grow while streaming: {seen}"
    assert all(later.startswith(earlier) for earlier, later in pairwise(seen))
    assert ANSWER.startswith(seen[0]) and len(seen[0]) < len(ANSWER)
    wait(browser, lambda d: texts(d, ".msg.assistant .text") == [ANSWER])
    assert "claude · claude-x" in browser.find_element(By.CSS_SELECTOR, ".msg.assistant .head").text

    # Edit & branch the first message: a second answer under the same (no) parent, shown as branch 2/2.
    server.claude.replies = [Reply("A different answer")]
    browser.find_element(By.CSS_SELECTOR, ".msg.user .edit").click()
    editor = visible(browser, ".edit-box")
    editor.clear()
    editor.send_keys("and knitting?")
    browser.find_element(By.CSS_SELECTOR, ".send-branch").click()
    wait(browser, lambda d: texts(d, ".msg.assistant:not(.streaming) .text") == ["A different answer"])
    assert texts(browser, ".msg.user .text") == ["and knitting?"]
    assert texts(browser, ".msg.user .which") == ["branch 2/2"]
    browser.find_element(By.CSS_SELECTOR, ".msg.user .prev").click()
    wait(browser, lambda d: texts(d, ".msg.user .text") == ["how do you weave?"])
    assert texts(browser, ".msg.assistant .text") == [ANSWER] and texts(browser, ".which") == ["branch 1/2"]

    # Spend: per provider in the sidebar, per thread in the header (11 in + 7 out tokens at $3/$15 per 1M, twice).
    wait(browser, lambda d: "$0.0003" in d.find_element(By.ID, "spend").text)
    assert "claude" in browser.find_element(By.CSS_SELECTOR, "#spend [data-provider=claude]").text
    assert browser.find_element(By.ID, "thread-spend").text == "$0.0003 · 36 tokens"

    # Switch the provider in the header: persisted, and the next reply comes from crush.
    Select(browser.find_element(By.ID, "thread-provider")).select_by_value("crush")
    wait(browser, lambda d: d.find_element(By.ID, "thread-model").get_attribute("value") == "qwen3:8b")
    send(browser, "and from crush?")
    wait(browser, lambda d: "from crush" in texts(d, ".msg.assistant:not(.streaming) .text"))
    assert texts(browser, "#threads li")[-1].endswith("crush · qwen3:8b")

    # Search opens the thread at the hit, on its branch.
    browser.find_element(By.ID, "search").send_keys("craft")
    hit = visible(browser, "#hits li.hit button")
    assert "[craft]" in hit.text
    browser.get(server.url + "/")  # a fresh page: the hit must open the thread by itself
    visible(browser, "#search").send_keys("craft")
    visible(browser, "#hits li.hit button").click()
    highlighted = visible(browser, ".msg.highlight")
    assert highlighted.find_element(By.CSS_SELECTOR, ".text").text == ANSWER
    assert browser.find_element(By.ID, "thread-title").text == "Weaving"


def test_continue_streams_the_rest_of_a_reply_onto_the_same_message(browser, server):
    login(browser, server)
    new_thread(browser, "claude", "Continued")
    server.claude.replies = [Reply("The first half of the tale")]
    send(browser, "tell me a tale")
    wait(browser, lambda d: texts(d, ".msg.assistant:not(.streaming) .text") == ["The first half of the tale"])
    assert browser.find_elements(By.CSS_SELECTOR, ".msg.user .cont") == []  # only on a reply
    server.claude.replies = [Reply(" and the second half of it")]
    browser.find_element(By.CSS_SELECTOR, ".msg.assistant .cont").click()
    seen = [text for text in streamed_text(browser) if text]
    assert seen and all(text.startswith("The first half of the tale") for text in seen)  # grows in place
    whole = "The first half of the tale and the second half of it"
    wait(browser, lambda d: texts(d, ".msg.assistant:not(.streaming) .text") == [whole])
    assert len(browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 1  # the same message, no branch
    thread = server.console.store.threads()[-1]
    [reply] = [m for m in server.console.store.messages(thread.id) if m.role == "assistant"]
    assert reply.content == whole and reply.status == "complete"


def test_model_text_is_shown_as_text_not_markup(browser, server):
    login(browser, server)
    new_thread(browser, "crush", "XSS")
    evil = '<img src=x onerror="window.__xss = 1"><b>bold</b>'
    server.crush.replies = [Reply(evil)]
    send(browser, "<script>window.__xss = 2</script>")
    wait(browser, lambda d: texts(d, ".msg.assistant:not(.streaming) .text") == [evil])
    assert texts(browser, ".msg.user .text") == ["<script>window.__xss = 2</script>"]
    assert browser.find_elements(By.CSS_SELECTOR, "#messages img, #messages b, #messages script") == []
    assert browser.execute_script("return window.__xss === undefined")


def test_cap_rename_and_delete_a_thread(browser, server):
    login(browser, server)
    new_thread(browser, "crush", "Scratch")
    thread_id = server.console.store.threads()[-1].id
    cap = browser.find_element(By.ID, "thread-cap")
    cap.send_keys("0.25\n")
    wait(browser, lambda d: server.console.store.thread(thread_id).cap_usd == 0.25)
    wait(browser, lambda d: d.find_element(By.ID, "thread-spend").text == "$0.00 of $0.25")
    assert "format=markdown" in browser.find_element(By.ID, "thread-export-md").get_attribute("href")

    browser.find_element(By.ID, "thread-rename").click()
    title = visible(browser, "#thread-title-input")
    title.send_keys(Keys.CONTROL, "a")  # not clear(): WebDriver's clear blurs the input, and leaving it saves
    title.send_keys("Renamed\n")
    wait(browser, lambda d: d.find_element(By.ID, "thread-title").text == "Renamed")
    assert server.console.store.thread(thread_id).title == "Renamed"
    assert "Renamed" in texts(browser, "#threads li")[0]

    browser.find_element(By.ID, "thread-delete").click()
    browser.switch_to.alert.accept()
    wait(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())
    assert not any("Renamed" in text for text in texts(browser, "#threads li"))
    assert thread_id not in [t.id for t in server.console.store.threads()]


def test_status_panel(browser, server):
    server.status = STATUS
    login(browser, server)
    browser.find_element(By.ID, "status-refresh").click()

    def rendered(driver: Any) -> bool:
        # One look at the whole panel, retried: the page's own first load may re-render it under our feet.
        body = driver.find_element(By.ID, "status-body")
        return (
            texts(driver, "#status-body .node")[0].startswith("claw")
            and "crush has not answered for 5m" in body.text
            and "busy generating" in body.text
            and len(body.find_elements(By.CSS_SELECTOR, ".dot.down")) == 1
            and len(body.find_elements(By.CSS_SELECTOR, "svg.spark polyline")) == 4
            and body.find_element(By.CSS_SELECTOR, "[data-series=power_watts] .value").text == "12W"
        )

    wait(browser, rendered)
    server.status = None
    browser.find_element(By.ID, "status-refresh").click()
    wait(browser, lambda d: d.find_element(By.ID, "status-body").text == "status unavailable")
