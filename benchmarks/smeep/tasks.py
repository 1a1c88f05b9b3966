"""The task registry: the 10-task T1-T4 ladder (upstream's bench-openclaw.py set) and the 30-task capability and
workflow suite. Each task seeds its own fresh workspace and checks the effect of what the model did."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from smeep import claims, truth
from smeep.checks import (
    Outcome,
    Verdict,
    all_of,
    fail,
    file_is,
    file_text,
    has_word,
    ok,
    states_number,
    states_token,
    tools_used,
    write,
)
from smeep.toolbox import Bench

Check = Callable[[Bench, Outcome], Awaitable[Verdict]]
Setup = Callable[[Bench], Awaitable[None]]


@dataclass(frozen=True)
class Task:
    id: str
    tier: int  # 1-4 for the ladder; the suite uses 0
    suite: str  # "ladder" or "suite"
    category: str
    name: str
    prompt: str  # '{site}' is replaced by the fixture site's URL
    sources: tuple[str, ...]  # tool sources offered (see smeep.toolbox.SOURCES); () = no tools ("infer" mode)
    check: Check
    setup: Setup | None = None
    timeout: float = 120.0

    @property
    def mode(self) -> str:
        return "agent" if self.sources else "infer"

    def render(self, site_url: str) -> str:
        return self.prompt.replace("{site}", site_url)


async def _nothing(bench: Bench) -> None:
    return None


def _seed(files: dict[str, str]) -> Setup:
    async def setup(bench: Bench) -> None:
        for name, text in files.items():
            write(bench.workspace, name, text)

    return setup


# --- the ladder (T1-T4), prompts after upstream's, with checks on effects ---------------------------------------

SOUL = "# Pinchy-7Q\n\nPinchy-7Q is the claw appliance's helper: it keeps files tidy and answers questions.\n"
LADDER_FILES = {"SOUL.md": SOUL, "notes.txt": "a\n", "todo.txt": "b\n", "data.csv": "c\n", "logs/x.log": "d\n"}
LADDER_TOOLS = ("exec", "files")
ITEM_UNITS = (r"items?", r"entries", r"entry", r"objects?", r"things?")


def _plain(reply: str) -> str:
    """The bare answer: no surrounding space, quotes, Markdown emphasis or code fence, no closing full stop."""
    text = re.sub(r"^```\w*\s*|\s*```$", "", reply.strip())
    return text.strip().strip("*_`'\"").rstrip(".!").strip()


async def t1_ping(bench: Bench, out: Outcome) -> Verdict:
    return ok() if _plain(out.reply).lower() == "pong" else fail("the reply is not the one word pong")


async def t1_math(bench: Bench, out: Outcome) -> Verdict:
    # By value: the whole answer must read as one number (so "22,1" or "221 or 231" are not 221).
    truth = 17 * 13
    values = claims.values(_plain(out.reply))
    whole = re.fullmatch(r"\d{1,3}(?:,\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?", _plain(out.reply))
    return ok() if whole and values == [truth] else fail(f"the reply is not the number {truth} alone")


async def t1_json(bench: Bench, out: Outcome) -> Verdict:
    try:
        value = json.loads(_plain(out.reply))  # the whole reply, so no second, different object can follow
    except ValueError:
        return fail("the reply is not one JSON object")
    return ok() if value == {"status": "ok", "count": 42} else fail(f"wrong object {value!r}")


async def t2_list(bench: Bench, out: Outcome) -> Verdict:
    return all_of(
        tools_used(bench, out, "run_command", "list_directory"),
        states_number(out.reply, truth.items(bench), ITEM_UNITS, ordinal=True),
    )


async def t2_read(bench: Bench, out: Outcome) -> Verdict:
    return all_of(tools_used(bench, out, "read_file", "run_command"), states_token(out.reply, truth.soul_name(bench)))


async def t2_write(bench: Bench, out: Outcome) -> Verdict:
    return all_of(tools_used(bench, out), file_is(bench, "bench-write.txt", "hello-bench"))


async def t3_write_read(bench: Bench, out: Outcome) -> Verdict:
    return all_of(
        tools_used(bench, out, at_least=2),
        file_is(bench, "bench-chain.txt", "verify-abc-123"),
        tools_used(bench, out, "read_file", "run_command"),
        states_token(out.reply, (file_text(bench, "bench-chain.txt") or "").strip()),
    )


async def t3_compute_write(bench: Bench, out: Outcome) -> Verdict:
    return all_of(tools_used(bench, out), file_is(bench, "bench-math.txt", "1024"))


async def t4_edit(bench: Bench, out: Outcome) -> Verdict:
    writes = [r.arguments.get("content", "") for r in bench.calls("write_file")]
    history = (
        ok()
        if not bench.log or any("version-1" in str(w) for w in writes)
        else fail("version-1 was never written before the replacement")
    )
    return all_of(
        tools_used(bench, out, at_least=3),
        history,
        file_is(bench, "bench-edit.txt", "version-2"),
        states_token(out.reply, (file_text(bench, "bench-edit.txt") or "").strip(), also_true=("version-1",)),
    )


async def t4_summary(bench: Bench, out: Outcome) -> Verdict:
    text = file_text(bench, "bench-summary.txt")
    if text is None:
        return fail("bench-summary.txt was not written")
    return all_of(
        tools_used(bench, out, at_least=2),
        ok() if "pinchy-7q" in text.lower() else fail("the summary does not name Pinchy-7Q"),
        ok() if 10 <= len(text.strip()) <= 400 else fail("the summary is not one sentence"),
        ok() if "bench-summary.txt" in out.reply or text.strip()[:30] in out.reply else fail("no report in reply"),
    )


LADDER: list[Task] = [
    Task("t1-ping", 1, "ladder", "instruction", "Reply 'pong'", "Reply with exactly one word: pong", (), t1_ping,
         timeout=90),
    Task("t1-math", 1, "ladder", "instruction", "17x13", "What is 17 times 13? Reply with the number only.", (),
         t1_math, timeout=90),
    Task("t1-json", 1, "ladder", "instruction", "JSON object",
         'Reply with only this JSON object and nothing else: {"status": "ok", "count": 42}', (), t1_json, timeout=90),
    Task("t2-list", 2, "ladder", "tools", "Count workspace items",
         "Use the run_command tool to run: ls. How many items are in the workspace? Answer with the number.",
         LADDER_TOOLS, t2_list, _seed(LADDER_FILES)),
    Task("t2-read", 2, "ladder", "tools", "Read SOUL.md",
         "Read the file SOUL.md and tell me the name written after '#' on its first line.",
         LADDER_TOOLS, t2_read, _seed(LADDER_FILES)),
    Task("t2-write", 2, "ladder", "tools", "Write a file",
         "Write the text hello-bench to the file bench-write.txt, then confirm.", LADDER_TOOLS, t2_write,
         _seed(LADDER_FILES)),
    Task("t3-write-read", 3, "ladder", "chain", "Write then read back",
         "Write verify-abc-123 to the file bench-chain.txt, then read the file back and tell me exactly what it says.",
         LADDER_TOOLS, t3_write_read, _seed(LADDER_FILES)),
    Task("t3-compute-write", 3, "ladder", "chain", "Compute and write",
         "Compute 2 to the power of 10 and write only the result to the file bench-math.txt.",
         LADDER_TOOLS, t3_compute_write, _seed(LADDER_FILES)),
    Task("t4-edit", 4, "ladder", "reasoning", "Write, replace, read",
         "Write version-1 to bench-edit.txt. Then replace its content with version-2. Then read the file and tell "
         "me what it contains.", LADDER_TOOLS, t4_edit, _seed(LADDER_FILES), timeout=150),
    Task("t4-summary", 4, "ladder", "reasoning", "Summarise to a file",
         "Read SOUL.md, write a one-sentence summary of it to bench-summary.txt, and tell me the summary.",
         LADDER_TOOLS, t4_summary, _seed(LADDER_FILES), timeout=180),
]  # fmt: skip

# --- the suite: 30 natural-language commands against the real MCP servers and harness tools -----------------------

NOTES = "".join(f"note {n}: buy item {n * 7}\n" for n in range(1, 14))  # 13 lines
INVENTORY = "sku,name,quantity\nA1,gadget-q2,8\nB7,widget-x9,37\nC3,sprocket-z,90\n"
NAMES = "Quennell\nMarwick\nAbernathy\nZolt\nOsgood\n"


Claim = Callable[[Bench, str], Verdict]  # the reply's words against ground truth read at check time


def _answer(tools: tuple[str, ...], claim: Claim) -> Check:
    """A question whose answer the harness reads itself; a named tool must have been used for it."""

    async def check(bench: Bench, out: Outcome) -> Verdict:
        return all_of(tools_used(bench, out, *tools), claim(bench, out.reply))

    return check


def _number(
    truth: Callable[[Bench], float],
    *units: str,
    also: Callable[[], tuple[float, ...]] = tuple,
    required: bool = True,
    ordinal: bool = False,
) -> Claim:
    def claim(bench: Bench, reply: str) -> Verdict:
        value = truth(bench)
        return states_number(reply, value, units, also_true=also(), required=required, ordinal=ordinal)

    return claim


def _token(truth: Callable[[Bench], str]) -> Claim:
    return lambda bench, reply: states_token(reply, truth(bench))


def _file(name: str, expected: Callable[[Bench], str], claim: Claim, *tools: str) -> Check:
    """The file holds the true value, and whatever value of its kind the reply states is true as well."""

    async def check(bench: Bench, out: Outcome) -> Verdict:
        return all_of(tools_used(bench, out, *tools), file_is(bench, name, expected(bench)), claim(bench, out.reply))

    return check


def _site_fetched(*paths: str) -> Callable[[Bench], Verdict]:
    def verdict(bench: Bench) -> Verdict:
        missing = [p for p in paths if p not in bench.site_requests]
        return fail(f"never fetched {', '.join(missing)}") if missing else ok()

    return verdict


def _web(paths: tuple[str, ...], claim: Claim) -> Check:
    async def check(bench: Bench, out: Outcome) -> Verdict:
        return all_of(_site_fetched(*paths)(bench), claim(bench, out.reply))

    return check


def _phrase(truth: Callable[[Bench], str]) -> Claim:
    def claim(bench: Bench, reply: str) -> Verdict:
        value = truth(bench)
        return ok() if value.lower() in reply.lower() else fail(f"the reply lacks {value!r}")

    return claim


def _ours(bench: Bench, status: str) -> list[Any]:
    """This task's reminders: on the appliance (the OpenClaw driver) the store holds older ones too."""
    return [r for r in bench.reminders.select(status, 100_000)[0] if r.created >= bench.started]


def _pending(bench: Bench) -> list[Any]:
    return _ours(bench, "pending")


def _reminder(words: str, due: Callable[[Bench], datetime], slack_s: float) -> Check:
    async def check(bench: Bench, out: Outcome) -> Verdict:
        found = [r for r in _pending(bench) if words in r.message.lower()]
        if not found:
            return fail(f"no pending reminder about {words!r}")
        wanted = due(bench)
        if all(abs((r.due - wanted).total_seconds()) > slack_s for r in found):
            return fail(f"the reminder is due {found[0].due.isoformat()}, expected {wanted.isoformat()}")
        return ok()

    return check


def _created_plus(seconds: int) -> Callable[[Bench], datetime]:
    def due(bench: Bench) -> datetime:
        return min(r.created for r in _pending(bench)) + timedelta(seconds=seconds)

    return due


async def _seed_reminders(bench: Bench) -> None:
    now = datetime.now(timezone.utc)
    bench.reminders.add("Dentist appointment", now + timedelta(days=2), "UTC", now)
    bench.reminders.add("Pay the rent", now + timedelta(days=3), "UTC", now)


async def _cancel_dentist(bench: Bench, out: Outcome) -> Verdict:
    status = {r.message: r.status for r in _ours(bench, "all")}
    if status.get("Dentist appointment") != "cancelled":
        return fail("the dentist reminder is not cancelled")
    if status.get("Pay the rent") != "pending":
        return fail("the rent reminder was touched")
    return ok()


def _hex(name: str) -> str:
    from claw.leds.state import COLORS

    return "#{:02x}{:02x}{:02x}".format(*COLORS[name]) if name in COLORS else name


async def _pixels(bench: Bench) -> list[dict[str, Any]]:
    result = await bench.leds.call_tool("get_state", {})
    return result.structured_content["pixels"]


def _strip(expected: list[str | None], *, colours_said: bool = True) -> Check:
    """Pixel colours, left to right; None = the pixel must be off. A colour the reply names must be on the strip."""

    async def check(bench: Bench, out: Outcome) -> Verdict:
        shown = [p["color"] if p["brightness"] > 0 else None for p in await _pixels(bench)]
        wanted = [_hex(c) if c else None for c in expected]
        if shown != wanted:
            return fail(f"the strip shows {shown}, expected {wanted}")
        said = [name for name in _colour_names() if name != "off" and has_word(out.reply, name)]
        wrong = [name for name in said if _hex(name) not in shown] if colours_said else []
        return fail(f"the reply says {wrong[0]}, the strip shows {sorted(set(map(str, shown)))}") if wrong else ok()

    return check


def _colour_names() -> list[str]:
    from claw.leds.state import COLORS

    return list(COLORS)


async def _progress(bench: Bench, out: Outcome) -> Verdict:
    lit = [p["brightness"] > 0 for p in await _pixels(bench)]
    if lit != [True] * 4 + [False] * 4:
        return fail(f"lit pixels {lit}, expected the left half")
    shown = 100 * sum(lit) / len(lit)
    wrong = [v for v in claims.percents(out.reply) if v != shown]
    return fail(f"the reply says {wrong[0]:g}%, the strip shows {shown:g}%") if wrong else ok()


async def _seed_green(bench: Bench) -> None:
    await bench.leds.call_tool("set_color", {"color": "green"})


async def _files_delete(bench: Bench, out: Outcome) -> Verdict:
    if (bench.workspace / "old.log").exists():
        return fail("old.log still exists")
    return ok() if (bench.workspace / "keep.txt").exists() else fail("keep.txt was deleted too")


async def _files_mkdir(bench: Bench, out: Outcome) -> Verdict:
    return ok() if (bench.workspace / "projects" / "2030").is_dir() else fail("projects/2030 is not a directory")


def _lines(name: str, expected: list[str]) -> Check:
    async def check(bench: Bench, out: Outcome) -> Verdict:
        text = file_text(bench, name)
        if text is None:
            return fail(f"{name} was not written")
        lines = [line.strip().lstrip("-* ").lower() for line in text.splitlines() if line.strip()]
        return ok() if lines == expected else fail(f"{name} has lines {lines}, expected {expected}")

    return check


def _sizes(reply: str, total: float, true_figures: list[float], what: str) -> Verdict:
    """``total`` (GiB) is stated, as GiB or MiB; every byte quantity stated is one of the true figures (8 %)."""
    said = claims.values(reply)
    if not (claims.close(total, said, 0.08, 0.6) or claims.close(total * 1024, said, 0.08)):
        return fail(f"the reply does not say ~{total:.1f} GiB")
    wrong = [q for q in claims.byte_quantities(reply) if not claims.close(q, true_figures, 0.08, 0.05)]
    return fail(f"the reply states {wrong[0]:.1f} GiB, which is no {what} figure of this host") if wrong else ok()


async def _memory(bench: Bench, out: Outcome) -> Verdict:
    info = truth.meminfo_gib()
    total = info["MemTotal"]
    figures = [*info.values(), total - info.get("MemAvailable", total)]  # total, free, available, used, swap...
    return all_of(tools_used(bench, out, "memory"), _sizes(out.reply, total, figures, "memory"))


async def _disk(bench: Bench, out: Outcome) -> Verdict:
    total = shutil.disk_usage("/").total / (1 << 30)
    return all_of(tools_used(bench, out, "disk"), _sizes(out.reply, total, truth.filesystem_gib(), "filesystem"))


# Interface-like names (a prefix and a number: eth0, wlan1, enp3s0, docker0), so ordinary words never match.
INTERFACE = re.compile(r"\b(?:eth|wlan|wlp|enp|ens|eno|enx|wwan|docker|br|veth|virbr|bond|tun|tap|wg)\d[\w.@-]*")


async def _interfaces(bench: Bench, out: Outcome) -> Verdict:
    names = truth.interfaces()
    missing = [n for n in names if n != "lo" and n not in out.reply]
    invented = [n for n in INTERFACE.findall(out.reply) if n.split("@")[0] not in names]
    return all_of(
        tools_used(bench, out, "network"),
        fail(f"missing {missing}") if missing else ok(),
        fail(f"the reply names {invented[0]}, which this host does not have") if invented else ok(),
    )


def _first_name(bench: Bench, reply: str) -> Verdict:
    """The first of the file's names the reply mentions must be the one that sorts first."""
    names = [n.strip() for n in (file_text(bench, "names.txt") or "").splitlines() if n.strip()]
    truth = sorted(names)[0] if names else "?"
    mentioned = sorted((m.start(), n) for n in names for m in [re.search(rf"\b{re.escape(n)}\b", reply)] if m)
    if not mentioned:
        return fail(f"the reply lacks {truth!r}")
    return ok() if mentioned[0][1] == truth else fail(f"the reply puts {mentioned[0][1]} first, not {truth}")


def _weekday(bench: Bench, reply: str) -> Verdict:
    truth = date(2031, 2, 14).strftime("%A")
    said = set(claims.weekdays(reply))
    if truth not in said:
        return fail(f"the reply lacks {truth!r}")
    return ok() if said == {truth} else fail(f"the reply also names {sorted(said - {truth})}")


QUANTITY_UNITS = (r"quantity", r"qty", r"units?", r"pieces", r"pcs", r"in stock", r"stock")
NOTES_LINES = truth.line_count("notes.txt")
CORE_UNITS = (r"cores?", r"cpus?", r"vcpus?", r"processors?", r"threads?")
LINE_UNITS = (r"lines?",)
PRICE_UNITS = (r"eur", r"euros?", r"€", r"\$", r"usd", r"costs?", r"price")
LINES_STATED = _number(NOTES_LINES, *LINE_UNITS, ordinal=True)
# What a chain's reply may say about the value it wrote: nothing, or the truth.
BUILD_SAID = _number(truth.build, r"builds?", required=False)
LINES_SAID = _number(NOTES_LINES, *LINE_UNITS, required=False, ordinal=True)
CORES_SAID = _number(truth.cores, *CORE_UNITS, also=truth.other_core_counts, required=False, ordinal=True)
WEB = ("web",)
SUITE: list[Task] = [
    # exec: a sandboxed run_command
    Task("exec-count-lines", 0, "suite", "exec", "Count lines", "How many lines does notes.txt have?",
         ("exec",), _answer(("run_command",), LINES_STATED), _seed({"notes.txt": NOTES})),
    Task("exec-kernel", 0, "suite", "exec", "Kernel release", "Which Linux kernel release is this machine running?",
         ("exec",), _answer(("run_command",), _token(lambda b: os.uname().release))),
    Task("exec-grep", 0, "suite", "exec", "Find a row",
         "In inventory.csv, what quantity is listed for widget-x9?", ("exec",),
         _answer(("run_command",), _number(truth.quantity, *QUANTITY_UNITS)), _seed({"inventory.csv": INVENTORY})),
    Task("exec-sort", 0, "suite", "exec", "Sort names",
         "Sort the names in names.txt alphabetically. Which name comes first?", ("exec",),
         _answer(("run_command",), _first_name), _seed({"names.txt": NAMES})),
    # web: the fixture site
    Task("web-title", 0, "suite", "web", "Page title", "What is the title of the web page at {site}/ ?", WEB,
         _web(("/",), _phrase(truth.page("/", "<title>(.*?)</title>")))),
    Task("web-price", 0, "suite", "web", "Product price", "How much does the kettle at {site}/products/kettle cost?",
         WEB, _web(("/products/kettle",), _number(lambda b: float(truth.page("/products/kettle", r"EUR ([\d.]+)")(b)),
                                                   *PRICE_UNITS))),
    Task("web-json", 0, "suite", "web", "API field", "What build number does {site}/api/status.json report?", WEB,
         _web(("/api/status.json",), _number(truth.build, r"builds?"))),
    Task("web-follow", 0, "suite", "web", "Follow a link",
         "Open {site}/start and follow its link to find the secret word. What is it?", WEB,
         _web(("/start", "/next/b7"), _token(truth.page("/next/b7", r"secret word is ([\w-]+)")))),
    # scheduling: the time server's reminders
    Task("sched-in", 0, "suite", "scheduling", "Remind in 15 min", "Remind me to stretch in 15 minutes.", ("time",),
         _reminder("stretch", _created_plus(900), 90)),
    Task("sched-at", 0, "suite", "scheduling", "Remind at a time",
         "Set a reminder to water the plants on 2030-05-04 at 09:30 UTC.", ("time",),
         _reminder("water", lambda b: datetime(2030, 5, 4, 9, 30, tzinfo=timezone.utc), 60)),
    Task("sched-cancel", 0, "suite", "scheduling", "Cancel a reminder", "Cancel my dentist reminder.", ("time",),
         _cancel_dentist, _seed_reminders),
    Task("sched-weekday", 0, "suite", "scheduling", "Day of week", "What day of the week is 2031-02-14?", ("time",),
         _answer(("day_of_week", "current_time"), _weekday)),
    # leds: the leds server against a simulated LED daemon
    Task("leds-all-blue", 0, "suite", "leds", "All blue", "Turn all the LEDs blue.", ("leds",), _strip(["blue"] * 8)),
    Task("leds-range", 0, "suite", "leds", "Left half red",
         "Make LED pixels 0 to 3 red and leave the others off.", ("leds",), _strip(["red"] * 4 + [None] * 4)),
    Task("leds-off", 0, "suite", "leds", "Lights off", "Turn the LED lights off.", ("leds",),
         _strip([None] * 8, colours_said=False), _seed_green),
    Task("leds-progress", 0, "suite", "leds", "Progress bar", "Show 50% progress on the LED strip.", ("leds",),
         _progress),
    # files: the files server's sandbox
    Task("files-write", 0, "suite", "files", "Write a list",
         "Create a file shopping.txt with eggs, milk and bread, one per line.", ("files",),
         _lines("shopping.txt", ["eggs", "milk", "bread"])),
    Task("files-read", 0, "suite", "files", "Read a secret", "What is the wifi password written in router.txt?",
         ("files",), _answer(("read_file",), _token(lambda b: truth.after(b, "router.txt", "wifi password:"))),
         _seed({"router.txt": "SSID: orchard\nwifi password: tangerine-8841\n"})),
    Task("files-mkdir", 0, "suite", "files", "Make a folder", "Make a folder called projects/2030.", ("files",),
         _files_mkdir),
    Task("files-delete", 0, "suite", "files", "Delete a file", "Delete old.log, it is not needed any more.",
         ("files",), _files_delete, _seed({"old.log": "x\n", "keep.txt": "y\n"})),
    Task("files-append", 0, "suite", "files", "Append a line", "Add cheese as a new last line of list.txt.",
         ("files",), _lines("list.txt", ["apples", "pears", "cheese"]), _seed({"list.txt": "apples\npears\n"})),
    # system: the system server on this very host
    Task("sys-cores", 0, "suite", "system", "CPU cores", "How many CPU cores does this machine have?", ("system",),
         _answer(("cpu",), _number(truth.cores, *CORE_UNITS, also=truth.other_core_counts, ordinal=True))),
    Task("sys-memory", 0, "suite", "system", "Total RAM", "How much RAM does this machine have in total?",
         ("system",), _memory),
    Task("sys-disk", 0, "suite", "system", "Disk size", "How big is the root filesystem, in GiB?", ("system",), _disk),
    Task("sys-network", 0, "suite", "system", "Interfaces", "Which network interfaces does this machine have?",
         ("system",), _interfaces),
    # chains: several tools in one request
    Task("chain-web-file", 0, "suite", "chains", "Web to file",
         "Fetch {site}/api/status.json and save only its build number in build.txt.", ("web", "files"),
         _file("build.txt", lambda b: f"{truth.build(b):g}", BUILD_SAID, "fetch_url", "write_file")),
    Task("chain-file-leds", 0, "suite", "chains", "File to LEDs", "Read color.txt and light all LEDs in that colour.",
         ("files", "leds"), _strip(["purple"] * 8), _seed({"color.txt": "purple\n"})),
    Task("chain-exec-file", 0, "suite", "chains", "Command to file",
         "Count the lines of notes.txt and write only the number to count.txt.", ("exec", "files"),
         _file("count.txt", lambda b: f"{NOTES_LINES(b):g}", LINES_SAID, "write_file"),
         _seed({"notes.txt": NOTES})),
    Task("chain-web-remind", 0, "suite", "chains", "Web to reminder",
         "Look up the next event on {site}/events and set a reminder for it at its time.", ("web", "time"),
         _reminder("board meeting", lambda b: datetime(2030, 6, 1, 18, 0, tzinfo=timezone.utc), 60)),
    Task("chain-sys-file", 0, "suite", "chains", "System to file",
         "Write this machine's CPU core count, the number only, into cores.txt.", ("system", "files"),
         _file("cores.txt", lambda b: f"{truth.cores():g}", CORES_SAID, "cpu", "write_file")),
]  # fmt: skip

TASKS: dict[str, Task] = {task.id: task for task in LADDER + SUITE}
QUICK = [task.id for task in LADDER if task.tier <= 2]


def select(
    suite: str, *, quick: bool = False, tiers: set[int] | None = None, ids: set[str] | None = None
) -> list[Task]:
    tasks = LADDER if suite == "ladder" else SUITE if suite == "suite" else LADDER + SUITE
    if quick:
        tasks = [t for t in tasks if t.id in QUICK]
    if tiers:
        tasks = [t for t in tasks if t.tier in tiers]
    if ids:
        tasks = [t for t in tasks if t.id in ids]
    return tasks
