"""Driver (b): the OpenClaw CLI's JSON, in the shapes upstream's bench-openclaw.py reads, and every task through
the driver with its checks on the appliance's state."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from claw.mcp.reminders import ReminderStore
from smeep import cli
from smeep.checks import Outcome, tools_used
from smeep.drivers import DriverError, DriverTimeout, OpenClawDriver, harness_name, parse_agent, parse_infer
from smeep.runner import run_one
from smeep.tasks import TASKS
from smeep.toolbox import Appliance, Bench, _add_mcp, fetch_url_tool, run_command_tool
from smeep.website import FixtureSite

from tests.smeep.scripts import PASS, failing

AGENT_OK = {
    "status": "ok",
    "result": {
        "payloads": [{"text": "Wrote hello-bench to bench-write.txt."}],
        "meta": {
            "durationMs": 16761,
            "toolSummary": {"calls": 2},
            "agentMeta": {"usage": {"input": 9250, "output": 41}},
        },
    },
}


def test_parse_agent_ok():
    outcome, ms = parse_agent("gateway: connected\n" + json.dumps(AGENT_OK))
    assert outcome.reply.startswith("Wrote hello-bench")
    assert (outcome.tool_count, outcome.input_tokens, outcome.output_tokens, ms) == (2, 9250, 41, 16761)


def test_parse_agent_leaves_out_openclaws_tool_search():
    # OpenClaw 2026.9.6 offers MCP tools through Tool Search: its summary names tool_call beside the tool reached.
    summary = {"calls": 2, "tools": ["time__day_of_week", "tool_call"], "failures": 0}
    answer = {"status": "ok", "result": {"payloads": [{"text": "Friday"}], "meta": {"toolSummary": summary}}}
    outcome, _ = parse_agent(json.dumps(answer))
    assert (outcome.tool_names, outcome.agent_tools) == (("day_of_week",), ("time__day_of_week",))


def test_parse_agent_timeout_and_error():
    with pytest.raises(DriverTimeout):
        parse_agent(json.dumps({"status": "timeout"}))
    with pytest.raises(DriverError, match="boom"):
        parse_agent(json.dumps({"status": "error", "error": "boom"}))
    with pytest.raises(DriverError, match="not JSON"):
        parse_agent("{oops")


def test_parse_infer():
    assert parse_infer(json.dumps({"ok": True, "outputs": [{"text": "pong"}]})).reply == "pong"
    with pytest.raises(DriverError):
        parse_infer(json.dumps({"ok": False, "error": "no model"}))


def test_command_lines_follow_upstream():
    driver = OpenClawDriver(["openclaw"])
    infer = driver.argv(TASKS["t1-ping"], "qwen3.5:4b", "p")
    assert infer == ["openclaw", "infer", "model", "run", "--gateway", "--json", "--model", "local/qwen3.5:4b",
                     "--prompt", "p"]  # fmt: skip
    agent = driver.argv(TASKS["t2-write"], "crush/gemma3-270m", "p")
    assert agent[:6] == ["openclaw", "agent", "--agent", "main", "--model", "crush/gemma3-270m"]
    assert agent[6] == "--session-id" and len(agent[7]) == 36
    assert agent[8:] == ["--json", "--timeout", "120", "--message", "p"]
    assert OpenClawDriver(agent="open").argv(TASKS["t2-write"], "scripted/scripted", "p")[2:4] == ["--agent", "open"]


# --- every task through the driver, its checks reading the appliance's state ------------------------------------
#
# A stand-in for the agent behind the CLI (the real one runs in the two-node scenario: molecule's test_bench.py):
# it does each task's passing script (tests/smeep/scripts.py) with the REAL claw MCP servers on the appliance's
# state (a real LED daemon's socket, the time server's reminder database, the files server's directory) and
# answers with the JSON the CLI prints, naming the tools as OpenClaw does (`<server>__<tool>`, exec, web_fetch).

OPENCLAW_NAME = {"run_command": "exec", "fetch_url": "web_fetch"}


class StandIn(OpenClawDriver):
    """The driver as it is, but its CLI call answered by the stand-in agent on the appliance."""

    def __init__(self, appliance: Appliance, workspace: Path, site_url: str, claim_only: bool = False) -> None:
        super().__init__(["openclaw"], agent="bench", appliance=appliance)
        self.workspace, self.site_url, self.claim_only = workspace, site_url, claim_only
        self.argvs: list[list[str]] = []

    async def invoke(self, argv: list[str]) -> tuple[int, str, str]:
        self.argvs.append(argv)
        prompt = argv[argv.index("--prompt" if "infer" in argv else "--message") + 1]
        task_id = next(t.id for t in TASKS.values() if t.render(self.site_url) == prompt)
        steps = PASS[task_id] if not self.claim_only else failing(task_id)
        text = steps[-1]["text"]
        text = text() if callable(text) else text
        if "infer" in argv:
            return 0, json.dumps({"ok": True, "outputs": [{"text": text}]}), ""
        used = await self.act(TASKS[task_id].sources, steps)
        summary = {"calls": len(used), "failures": 0, "tools": sorted(set(used))}
        answer = {"status": "ok", "result": {"payloads": [{"text": text}], "meta": {"toolSummary": summary}}}
        return 0, "gateway: connected\n" + json.dumps(answer), ""

    async def act(self, sources: tuple[str, ...], steps: list) -> list[str]:
        from claw.leds.client import LedClient
        from claw.mcp import files, leds, system
        from claw.mcp import time as time_server
        from claw.mcp.reminders import ReminderStore
        from claw.mcp.sandbox import Sandbox

        used: list[str] = []
        async with contextlib.AsyncExitStack() as stack:
            bench = Bench(self.workspace, self.site_url)
            bench.tools["run_command"] = run_command_tool(self.workspace)
            bench.tools["fetch_url"] = fetch_url_tool(self.site_url)
            store = ReminderStore(self.appliance.reminders)
            stack.callback(store.close)
            servers = {
                "files": files.build_server(Sandbox(self.workspace, 1 << 20, 1 << 20)),
                "time": time_server.build_server(store, zone="UTC"),
                "leds": leds.build_server(LedClient(self.appliance.led_socket, timeout=5)),
                "system": system.create(system.Settings(vcgencmd=None)),
            }
            names = {}
            for server, built in servers.items():
                before = set(bench.tools)
                await _add_mcp(stack, bench, built)
                names.update({tool: f"{server}__{tool}" for tool in set(bench.tools) - before})
            for step in steps:
                for name, arguments in step.get("tools", []):
                    arguments = {k: v.replace("{site}", self.site_url) if isinstance(v, str) else v
                                 for k, v in arguments.items()}  # fmt: skip
                    if name == "cancel_reminder":  # the appliance's store has older reminders: find the id
                        pending = store.select("pending", 1000)[0]
                        arguments["reminder_id"] = max(r.id for r in pending if r.message == "Dentist appointment")
                    await bench.call(name, arguments)
                    assert bench.log[-1].ok, bench.log[-1]
                    used.append(names.get(name) or OPENCLAW_NAME[name])
        return used


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def site():
    with FixtureSite() as served:
        yield served


@contextlib.asynccontextmanager
async def appliance_world(tmp_path: Path):
    """The appliance's state: a real LED daemon (simulated strip) on its socket and the time server's database."""
    from claw.leds.backends import SimulatedBackend
    from claw.leds.client import LedClient
    from claw.leds.daemon import LedDaemon, LedService
    from claw.leds.state import LedState

    scratch = Path(tempfile.mkdtemp(prefix="smeep-oc-", dir="/tmp"))  # short: the socket path must fit
    backend = SimulatedBackend()
    try:
        async with LedDaemon(LedService(LedState(), backend.name), backend, scratch / "leds.sock") as daemon:
            appliance = Appliance(tmp_path / "time.sqlite3", daemon.socket_path)
            # Earlier runs on the appliance: an old reminder of each kind, still pending; a strip already blue.
            now = datetime.now(timezone.utc)
            store = ReminderStore(appliance.reminders)
            store.add("Dentist appointment", now + timedelta(days=9), "UTC", now - timedelta(days=1))
            store.add("stretch", now + timedelta(seconds=900), "UTC", now - timedelta(days=1))
            store.add("water the plants", datetime(2030, 5, 4, 9, 30, tzinfo=timezone.utc), "UTC", now)
            store.close()
            await LedClient(daemon.socket_path, timeout=5).set_color("blue")
            yield appliance
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_no_task_is_skipped_by_the_openclaw_driver():
    driver = OpenClawDriver()
    assert not hasattr(driver, "supports")  # the runner SKIPs only what a driver says it cannot run
    assert isinstance(driver.appliance, Appliance)


@pytest.mark.anyio
@pytest.mark.parametrize("task_id", sorted(TASKS))
async def test_every_task_runs_through_the_openclaw_driver(site, tmp_path, task_id):
    """The claim fails and the work passes, checked on the appliance's state, for every task (none is SKIP)."""
    task = TASKS[task_id]
    async with appliance_world(tmp_path) as appliance:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        claimer = StandIn(appliance, workspace, site.url, claim_only=True)
        claimed = await run_one(task, 1, "scripted/scripted", claimer, site, workspace)
        assert claimed.status == "FAIL", claimed
        doer = StandIn(appliance, workspace, site.url)
        done = await run_one(task, 1, "scripted/scripted", doer, site, workspace)
        assert done.status == "PASS", done
        assert doer.argvs[0][1] == ("infer" if task.mode == "infer" else "agent")
        if task.mode == "agent":
            assert doer.argvs[0][2:4] == ["--agent", "bench"] and done.tools == sum(
                len(s.get("tools", [])) for s in PASS[task_id]
            )
            # Recorded by OpenClaw's names: its own tools, or an MCP server's of those the task is about.
            servers = {"files", "time", "leds", "system"} & set(task.sources)
            assert done.tool_names and all(
                n in ("exec", "web_fetch") or n.split("__")[0] in servers for n in done.tool_names
            ), done.tool_names
        else:
            assert done.tool_names is None
        # Nothing the task scheduled is left to fire on the appliance; older reminders are untouched.
        store = ReminderStore(appliance.reminders)
        try:
            pending = {r.message for r in store.select("pending", 100)[0]}
        finally:
            store.close()
        assert pending == {"Dentist appointment", "stretch", "water the plants"}


@pytest.mark.parametrize(
    ("openclaw", "harness"),
    [
        ("exec", "run_command"),
        ("web_fetch", "fetch_url"),
        ("read", "read_file"),
        ("write", "write_file"),
        ("files__read_file", "read_file"),
        ("files__write_file", "write_file"),
        ("time__create_reminder", "create_reminder"),
        ("time__day_of_week", "day_of_week"),
        ("leds__set_color", "set_color"),
        ("system__cpu", "cpu"),
        ("mcp__system__memory", "memory"),
        ("session_status", "session_status"),
    ],
)
def test_openclaw_tool_names_map_to_the_harness_names(openclaw, harness):
    assert harness_name(openclaw) == harness


def test_tool_summary_names_and_failures_reach_the_checks(tmp_path):
    data = json.loads(json.dumps(AGENT_OK))
    data["result"]["meta"]["toolSummary"] = {"calls": 2, "failures": 1, "tools": ["exec", "system__cpu"]}
    outcome, _ = parse_agent(json.dumps(data))
    assert outcome.tool_names == ("run_command", "cpu") and outcome.tool_failures == 1
    bench = Bench(tmp_path, "http://127.0.0.1:1")
    assert tools_used(bench, outcome, "cpu").passed
    assert not tools_used(bench, outcome, "memory").passed  # a system task answered without its tool
    assert not tools_used(bench, outcome, at_least=2).passed  # one of the two calls failed
    # An older CLI without `tools`: the count alone.
    data["result"]["meta"]["toolSummary"] = {"calls": 1}
    assert tools_used(bench, parse_agent(json.dumps(data))[0], "memory").passed


def test_the_cli_records_the_driver_and_agent_and_leaves_the_reminders_alone(fake, tmp_path):
    """`--driver openclaw --agent open`: the argv reaches the CLI and the results say which driver and agent ran.
    (A recorded answer stands in for the CLI here; molecule's test_bench.py runs the real one.)"""
    cli_stub = tmp_path / "openclaw"
    answer = {"status": "ok", "result": {"payloads": [{"text": "It is a Friday."}], "meta": {
        "durationMs": 5, "toolSummary": {"calls": 1, "failures": 0, "tools": ["time__day_of_week"]}}}}  # fmt: skip
    cli_stub.write_text(
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print({json.dumps(answer)!r})\n"
    )
    out = tmp_path / "suite.json"
    never = tmp_path / "never.sqlite3"
    args = ["suite", "--tasks", "sched-weekday", "--driver", "openclaw", "--agent", "open", "--engine", fake.url,
            "--openclaw", f"{sys.executable} {cli_stub}", "--model", "scripted/scripted", "--no-preload",
            "--reminders-db", str(never), "--no-progress", "--no-plots", "--output", str(out)]  # fmt: skip
    assert cli.main(args) == 0
    document = json.loads(out.read_text())
    assert (document["driver"], document["agent"]) == ("openclaw", "open")
    run = document["runs"]["scripted/scripted"]["sched-weekday"]
    assert (run["status"], run["tools"], run["ms"], run["tool_names"]) == ("PASS", 1, 5, ["time__day_of_week"]), run
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:5] == ["agent", "--agent", "open", "--model", "scripted/scripted"]
    assert not never.exists()  # the day of the week never opens the time server's database


# --- the scripted model double that stands for a tool-calling model in the two-node scenario ----------------------

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "node" / "scripted_model.py"


@pytest.fixture(scope="module")
def double():
    spec = importlib.util.spec_from_file_location("scripted_model", DOUBLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offered(*names: str) -> list[dict]:
    return [{"type": "function", "function": {"name": name, "parameters": {}}} for name in names]


def test_the_double_knows_real_smeep_prompts_and_calls_the_offered_tool(double):
    prompts = {task.prompt for task in TASKS.values()}
    assert double.TASKS and set(double.TASKS) <= prompts  # the benchmark's own words, unchanged
    body = {"messages": [{"role": "user", "content": "[Mon 09:00] What day of the week is 2031-02-14?"}],
            "tools": offered("exec", "time__current_time", "time__day_of_week")}  # fmt: skip
    call = double.reply(body)["tool_calls"][0]["function"]
    assert call["name"] == "time__day_of_week" and json.loads(call["arguments"]) == {"date": "2031-02-14"}
    runtool = {"messages": [{"role": "user", "content": 'RUNTOOL set_color {"color": "blue", "first": 0}'}],
               "tools": offered("leds__set_color")}  # fmt: skip
    call = double.reply(runtool)["tool_calls"][0]["function"]
    assert call["name"] == "leds__set_color" and json.loads(call["arguments"]) == {"color": "blue", "first": 0}
    # Unchanged: RUNEXEC asks for exec, a tool result is answered with, anything else gets a plain reply.
    call = double.reply({"messages": [{"role": "user", "content": "RUNEXEC touch /tmp/x"}]})["tool_calls"][0]
    assert call["function"]["name"] == "exec" and json.loads(call["function"]["arguments"]) == {
        "command": "touch /tmp/x"
    }
    assert double.reply({"messages": [{"role": "user", "content": "hi"}]}) == {"content": "scripted reply"}


@pytest.mark.anyio
async def test_the_doubles_answer_from_the_real_time_tool_passes_the_check(double, tmp_path):
    """What the two-node test expects: the double answers with the real time server's result, and that passes."""
    from claw.mcp import time as time_server
    from mcp import Client

    store = ReminderStore(tmp_path / "time.sqlite3")
    try:
        async with Client(time_server.build_server(store, zone="UTC")) as client:
            result = await client.call_tool("day_of_week", {"date": "2031-02-14"})
    finally:
        store.close()
    text = "".join(block.text for block in result.content if getattr(block, "type", "") == "text")
    body = {"messages": [{"role": "user", "content": TASKS["sched-weekday"].prompt},
                         {"role": "tool", "content": text}]}  # fmt: skip
    reply = double.reply(body)["content"]
    outcome = Outcome(reply, 1, tool_names=(harness_name("time__day_of_week"),))
    verdict = await TASKS["sched-weekday"].check(Bench(tmp_path, "http://127.0.0.1:1"), outcome)
    assert verdict.passed, (reply, verdict)
    wrong = Outcome(reply, 1, tool_names=(harness_name("exec"),))
    assert not (await TASKS["sched-weekday"].check(Bench(tmp_path, "http://127.0.0.1:1"), wrong)).passed
