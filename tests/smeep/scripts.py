"""Scripted model answers per task: one that does the work (must PASS) and one that fails (must FAIL).

The failing script of a tool task only CLAIMS the result (the pass script's final words, no tool call), so a
check that looked at words alone would wrongly pass it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.doubles.engine import Step, call, say

CORES = os.cpu_count()
MEMINFO = Path("/proc/meminfo").read_text().splitlines()
MEM_GIB = int(next(line for line in MEMINFO if line.startswith("MemTotal")).split()[1]) / (1 << 20)
DISK_GIB = shutil.disk_usage("/").total / (1 << 30)


def interfaces() -> str:
    """Read when the fake answers, not at import: containers add and remove interfaces while the tests run."""
    return ", ".join(sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo"))


SUMMARY = "Pinchy-7Q is the claw appliance's helper that keeps files tidy."

PASS: dict[str, list[Step]] = {
    "t1-ping": [say("pong")],
    "t1-math": [say("221")],
    "t1-json": [say('{"status": "ok", "count": 42}')],
    "t2-list": [call("run_command", command="ls"), say("There are 5 items.")],
    "t2-read": [call("read_file", path="SOUL.md"), say("The name is Pinchy-7Q.")],
    "t2-write": [call("write_file", path="bench-write.txt", content="hello-bench"), say("Wrote hello-bench.")],
    "t3-write-read": [call("write_file", path="bench-chain.txt", content="verify-abc-123"),
                      call("read_file", path="bench-chain.txt"), say("It says verify-abc-123.")],
    "t3-compute-write": [call("write_file", path="bench-math.txt", content="1024"), say("Wrote 1024.")],
    "t4-edit": [call("write_file", path="bench-edit.txt", content="version-1"),
                call("write_file", path="bench-edit.txt", content="version-2"),
                call("read_file", path="bench-edit.txt"), say("The file contains version-2.")],
    "t4-summary": [call("read_file", path="SOUL.md"), call("write_file", path="bench-summary.txt", content=SUMMARY),
                   say(f"Wrote bench-summary.txt: {SUMMARY}")],
    "exec-count-lines": [call("run_command", command="wc -l notes.txt"), say("notes.txt has 13 lines.")],
    "exec-kernel": [call("run_command", command="uname -r"), say(f"It runs {os.uname().release}.")],
    "exec-grep": [call("run_command", command="grep widget-x9 inventory.csv"), say("The quantity is 37.")],
    "exec-sort": [call("run_command", command="sort names.txt"), say("Abernathy comes first.")],
    "web-title": [call("fetch_url", url="{site}/"), say("The title is Lattice Orchard Co-op.")],
    "web-price": [call("fetch_url", url="{site}/products/kettle"), say("It costs EUR 47.30.")],
    "web-json": [call("fetch_url", url="{site}/api/status.json"), say("Build 8812.")],
    "web-follow": [call("fetch_url", url="{site}/start"), call("fetch_url", url="{site}/next/b7"),
                   say("The secret word is marmalade-44.")],
    "sched-in": [call("create_reminder", message="Stretch", in_seconds=900), say("I will remind you to stretch.")],
    "sched-at": [call("create_reminder", message="Water the plants", at="2030-05-04T09:30", zone="UTC"),
                 say("Reminder set.")],
    "sched-cancel": [call("list_reminders"), call("cancel_reminder", reminder_id=1), say("Cancelled the dentist.")],
    "sched-weekday": [call("day_of_week", date="2031-02-14"), say("It is a Friday.")],
    "leds-all-blue": [call("set_color", color="blue"), say("All LEDs are blue.")],
    "leds-range": [call("set_color", color="red", first=0, last=3), say("Pixels 0-3 are red.")],
    "leds-off": [call("set_color", color="off"), say("The lights are off.")],
    "leds-progress": [call("set_progress", percent=50), say("Showing 50%.")],
    "files-write": [call("write_file", path="shopping.txt", content="eggs\nmilk\nbread\n"), say("Created.")],
    "files-read": [call("read_file", path="router.txt"), say("The password is tangerine-8841.")],
    "files-mkdir": [call("make_directory", path="projects/2030", parents=True), say("Made projects/2030.")],
    "files-delete": [call("delete_file", path="old.log"), say("Deleted old.log.")],
    "files-append": [call("read_file", path="list.txt"),
                     call("write_file", path="list.txt", content="apples\npears\ncheese\n"), say("Added cheese.")],
    "sys-cores": [call("cpu"), say(f"It has {CORES} cores.")],
    "sys-memory": [call("memory"), say(f"{MEM_GIB:.1f} GiB of RAM.")],
    "sys-disk": [call("disk"), say(f"The root filesystem is {DISK_GIB:.0f} GiB.")],
    "sys-network": [call("network"), say(lambda: "Interfaces: " + interfaces())],
    "chain-web-file": [call("fetch_url", url="{site}/api/status.json"),
                       call("write_file", path="build.txt", content="8812"), say("Saved 8812.")],
    "chain-file-leds": [call("read_file", path="color.txt"), call("set_color", color="purple"), say("Purple.")],
    "chain-exec-file": [call("run_command", command="wc -l notes.txt"),
                        call("write_file", path="count.txt", content="13"), say("Wrote 13.")],
    "chain-web-remind": [call("fetch_url", url="{site}/events"),
                         call("create_reminder", message="Orchard board meeting", at="2030-06-01T18:00", zone="UTC"),
                         say("Reminder set for the Orchard board meeting.")],
    "chain-sys-file": [call("cpu"), call("write_file", path="cores.txt", content=str(CORES)), say("Done.")],
}  # fmt: skip

WRONG = {"t1-ping": "ping pong!", "t1-math": "231", "t1-json": '{"status": "ok", "count": 41}'}


def failing(task_id: str) -> list[Step]:
    if task_id in WRONG:
        return [say(WRONG[task_id])]
    return [PASS[task_id][-1]]  # claims the outcome, does nothing
