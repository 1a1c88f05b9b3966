"""The appliance's stdout callback: Ansible's default output, plus a failure summary and retry progress.

A failed `make up` scrolls the failing task's error far up, under the recap of three playbooks. This callback
ends the output with what failed (play, role, task, message), on which node, the command that shows that node's
logs and the command to re-run. Tasks polled with `until:` print how long they have been running and the last
line of their output instead of "FAILED - RETRYING", which reads like an error while a build is progressing.
Everything else is `ansible.builtin.default` unchanged, so -v, result_format and the recap behave as usual.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible import constants as C
from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import CallbackTaskResult
from ansible.inventory.host import Host
from ansible.playbook.task import Task
from ansible.plugins.callback.default import CallbackModule as DefaultCallback

DOCUMENTATION = """
name: claw
type: stdout
short_description: default output with a failure summary and retry progress
description:
  - The default callback's output. At the end of a run with failed or unreachable hosts, a summary names per
    host the play, role, task and message, the command to read the node's logs and the command to re-run.
  - Tasks retried by C(until) print attempt, elapsed time and the last line of their stdout.
  - The log command is the host variable C(appliance_log_command) when set (C({unit_args}) is replaced by
    C(-u UNIT) or C(-b)), else journalctl over SSH, in a podman/docker container, or on the controller.
extends_documentation_fragment:
  - default_callback
  - result_format_callback
requirements:
  - set as stdout in configuration
"""

SERVICE_ACTIONS = {"systemd", "systemd_service", "service"}
# assert/fail tasks carry their own explanation (a bad variable, a failed build): no unit's journal has it.
CHECK_ACTIONS = {"assert", "fail", "validate_argument_spec"}
LINES = 5
WIDTH = 300


@dataclass
class Failure:
    host: str
    play: str
    role: str
    task: str
    lines: list[str] = field(default_factory=list)
    logs: str = ""
    unreachable: bool = False


def _short_action(action: str) -> str:
    return action.rsplit(".", 1)[-1]


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _text(value: Any) -> list[str]:
    # One very long line (a failed command line, a JSON body) would bury the rest: each is cut at WIDTH.
    lines = [line.rstrip() for line in str(value or "").strip().splitlines() if line.strip()]
    return [line if len(line) <= WIDTH else line[: WIDTH - 3] + "..." for line in lines]


def describe(res: dict[str, Any], failed_when: list[Any] | None = None) -> list[str]:
    """The message's first lines, then the end of stderr (or of stdout when stderr is empty): for a command
    the message is only "non-zero return code" and the reason is in its output."""
    lines = _text(res.get("msg"))[:LINES]
    if not lines and failed_when and res.get("failed_when_result"):  # the module succeeded, the condition did not
        lines = [f"failed_when: {' and '.join(str(c) for c in failed_when)}"]
    if lines and res.get("rc") not in (None, 0):
        lines[0] += f" (rc={res['rc']})"
    stderr, stdout = _text(res.get("stderr"))[-LINES:], _text(res.get("stdout"))[-LINES:]
    said = "\n".join(lines)
    if stderr and not all(line in said for line in stderr):  # systemd and others repeat stderr in msg
        lines += ["stderr:"] + [f"  {line}" for line in stderr]
    elif stdout and not stderr:
        lines += ["stdout:"] + [f"  {line}" for line in stdout]
    return lines or ["(no message: see the task's output above)"]


def rerun_command() -> str:
    """`make up` when make started this run through at most a shell (Linux /proc), else this ansible-playbook
    command line. Any other parent (pytest, molecule) stops the search: its make target is not the re-run."""
    pid = os.getppid()
    for _ in range(4):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        name = Path(argv[0]).name if argv else ""
        if name in ("make", "gmake"):
            return shlex.join(["make", *argv[1:]])
        if name not in ("sh", "bash", "dash"):
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid, after the "(comm)" field
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "claw"

    def __init__(self) -> None:
        super().__init__()
        self._failures: dict[str, Failure] = {}  # the last one per host: the one that stopped it
        self._started: dict[tuple[str, str], float] = {}

    # --- retry progress -------------------------------------------------------------------------------------

    def v2_runner_on_start(self, host: Host, task: Task) -> None:
        self._started[(host.get_name(), task._uuid)] = time.monotonic()
        super().v2_runner_on_start(host, task)

    def v2_runner_retry(self, result: CallbackTaskResult) -> None:
        res = result.result
        started = self._started.get((result.host.get_name(), result.task._uuid))
        elapsed = f", {_duration(time.monotonic() - started)}" if started is not None else ""
        item = self._get_item_label(res) if "_ansible_item_label" in res or "item" in res else None
        name = (result.task_name or str(result.task)) + (f" (item={item})" if item is not None else "")
        attempt = f"attempt {res['attempts']} of {res['retries']}{elapsed}"
        msg = f"[{self.host_label(result)}] still running: {name} ({attempt})"
        last = _text(res.get("stdout"))
        if last:
            msg += f": {last[-1][:160]}"
        if self._run_is_verbose(result, verbosity=2):
            msg += f" Result was: {self._dump_results(res)}"
        self._display.display(msg, color=C.COLOR_DEBUG)

    # --- failure summary ------------------------------------------------------------------------------------

    def v2_runner_on_failed(self, result: CallbackTaskResult, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._record(result, unreachable=False)
        super().v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_unreachable(self, result: CallbackTaskResult) -> None:
        if not result.task.ignore_unreachable:
            self._record(result, unreachable=True)
        super().v2_runner_on_unreachable(result)

    def _record(self, result: CallbackTaskResult, unreachable: bool) -> None:
        # A callback that raises only logs a warning and the summary is lost: never let this fail the run.
        try:
            task, res = result.task, dict(result.result)
            item = None
            failed_items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
            if failed_items:  # a loop: the first failed item says more than "One or more items failed"
                res, item = failed_items[0], self._get_item_label(failed_items[0])
            role = task._role.get_name(include_role_fqcn=False) if task._role else ""
            name = (result.task_name or task.get_name()).strip()
            self._failures[result.host.get_name()] = Failure(
                host=result.host.get_name(),
                play=self._play.get_name().strip() if self._play else "",
                role=role,
                task=name + (f" (item={item})" if item is not None else ""),
                lines=describe(res, None if unreachable else task.failed_when),
                logs=self._log_command(result.host, task, res),
                unreachable=unreachable,
            )
        except Exception as exc:
            self._display.warning(f"claw callback: could not record the failure: {exc}")

    def _unit(self, task: Task, res: dict[str, Any]) -> str:
        action = _short_action(task.action)
        if action in SERVICE_ACTIONS:
            args = (res.get("invocation") or {}).get("module_args") or {}
            for name in (res.get("name"), args.get("name"), task.args.get("name")):
                if name and "{{" not in str(name):
                    return str(name)
        # A role that ships a unit named after itself (llamacpp.service, ...) is that service's role.
        if task._role and action not in CHECK_ACTIONS:
            role, path = task._role.get_name(include_role_fqcn=False), Path(task._role._role_path)
            if (path / "templates" / f"{role}.service.j2").is_file() or (path / "files" / f"{role}.service").is_file():
                return role
        return ""

    def _log_command(self, host: Host, task: Task, res: dict[str, Any]) -> str:
        unit = self._unit(task, res)
        unit_args = f"-u {shlex.quote(unit)}" if unit else "-b"
        journal = f"journalctl {unit_args} -n 100 --no-pager"
        hostvars = self._host_vars(host, ("appliance_log_command", "ansible_connection", "ansible_host",
                                          "ansible_user", "ansible_port"))  # fmt: skip
        if hostvars.get("appliance_log_command"):
            return str(hostvars["appliance_log_command"]).replace("{unit_args}", unit_args)
        connection = _short_action(str(hostvars.get("ansible_connection") or (self._play and self._play.connection)))
        address = str(hostvars.get("ansible_host") or host.get_name())
        if connection == "local":
            return journal
        for runtime in ("podman", "docker"):
            if connection.startswith(runtime):  # podman, containers.podman.podman, podman_nsenter, docker
                return f"{runtime} exec {shlex.quote(address)} {journal}"
        user = str(hostvars.get("ansible_user") or "")
        port = f"-p {hostvars['ansible_port']} " if hostvars.get("ansible_port") not in (None, "", 22, "22") else ""
        sudo = "sudo " if user and user != "root" else ""
        return f"ssh {port}{user + '@' if user else ''}{address} {sudo}{journal}"

    def _host_vars(self, host: Host, names: tuple[str, ...]) -> dict[str, Any]:
        """The named inventory variables of a host, templated; {} when they cannot be read."""
        if self._play is None:
            return {}
        from ansible.template import Templar

        try:
            manager = self._play.get_variable_manager()
            variables = manager.get_vars(play=self._play, host=host)
            templar = Templar(loader=manager._loader, variables=variables)
            return {n: templar.template(variables[n]) for n in names if n in variables}
        except Exception as exc:
            self._display.warning(f"claw callback: could not read {host.get_name()}'s variables: {exc}")
            return {}

    def v2_playbook_on_stats(self, stats: AggregateStats) -> None:
        super().v2_playbook_on_stats(stats)
        # Only hosts the recap counts as failed: a failure a rescue block handled is not one.
        failed = {h for h, n in stats.failures.items() if n} | {h for h, n in stats.dark.items() if n}
        stopped = [f for h, f in sorted(self._failures.items()) if h in failed]
        if not stopped:
            return
        show = self._display.display
        self._display.banner(f"FAILED ON {len(stopped)} NODE{'S' if len(stopped) > 1 else ''}")
        for f in stopped:
            show(f"  node:  {f.host}{' (UNREACHABLE)' if f.unreachable else ''}", color=C.COLOR_ERROR)
            show(f"  play:  {f.play}")
            if f.role:
                show(f"  role:  {f.role}")
            show(f"  task:  {f.task}")
            show(f"  error: {f.lines[0]}", color=C.COLOR_ERROR)
            for line in f.lines[1:]:
                show(f"         {line}", color=C.COLOR_ERROR)
            show(f"  logs:  {f.logs}")
            show("", screen_only=True)
        show(f"Fix the cause, then re-run: {rerun_command()}")
