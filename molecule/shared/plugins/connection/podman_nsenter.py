"""Ansible connection to a local podman container through nsenter (the Molecule scenarios only).

`podman exec` starts podman, conmon and runc for every command: three or four times per Ansible task, about
0.5 s of CPU each on the test machine. This plugin enters the container's namespaces with nsenter instead
(a few milliseconds), so the same playbooks run several times faster.
Commands get the container's own environment (`env -i` plus the image's Config.Env), not the controller's.
The controller runs as root, as Molecule's podman driver already requires.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
name: podman_nsenter
short_description: Run commands in a local podman container's namespaces with nsenter
description:
  - Commands run in the container's mount, UTS, IPC, network, PID and cgroup namespaces with its environment;
    files are copied through the container's shell. The controller must run as root on the container's host.
options:
  remote_addr:
    description: The container's name or id.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  podman_executable:
    description: The podman command, to look up the container's PID and environment.
    default: podman
    vars:
      - name: ansible_podman_executable
extends_documentation_fragment:
  - connection_pipelining
"""

NAMESPACES = ("--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup")


class Container:
    """A running container as nsenter reaches it: its init's PID (on the host) and its environment."""

    def __init__(self, name: str, podman: str = "podman") -> None:
        done = subprocess.run(
            [podman, "inspect", "--type", "container", "--format", "{{.State.Pid}} {{json .Config.Env}}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LookupError(f"podman inspect {name}: {done.stderr.strip()}")
        pid, env = done.stdout.strip().split(" ", 1)
        if pid == "0":
            raise LookupError(f"container {name} is not running")
        self.name = name
        self.pid = int(pid)
        self.env = [item for item in json.loads(env) or [] if "=" in item]

    def argv(self, command: str) -> list[str]:
        """The host command that runs `command` with /bin/sh in the container."""
        return [
            "nsenter",
            f"--target={self.pid}",
            *NAMESPACES,
            "--root",
            "--wd",
            "--",
            "/usr/bin/env",
            "-i",
            *self.env,
            "/bin/sh",
            "-c",
            command,
        ]


class Connection(ConnectionBase):
    """exec_command, put_file and fetch_file on a local podman container, without podman exec."""

    transport = "podman_nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._container: Container | None = None

    def _connect(self):
        if self._container is None:
            try:
                self._container = Container(self.get_option("remote_addr"), self.get_option("podman_executable"))
            except LookupError as error:
                raise AnsibleConnectionFailure(str(error)) from error
            self._connected = True
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = self._container.argv(cmd)
        self._display.vvv(f"EXEC {shlex.join(argv[-3:])}", host=self._container.name)
        done = subprocess.run(argv, input=in_data, capture_output=True, check=False)
        return done.returncode, done.stdout, done.stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        self._connect()
        # Through the container's shell, not /proc/PID/root: the container's own symlinks resolve in the container.
        with Path(in_path).open("rb") as source:
            done = subprocess.run(
                self._container.argv(f"cat > {shlex.quote(out_path)}"), stdin=source, capture_output=True, check=False
            )
        if done.returncode != 0:
            raise AnsibleError(f"could not copy {in_path} to {self._container.name}:{out_path}: {done.stderr!r}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        self._connect()
        with Path(out_path).open("wb") as target:
            done = subprocess.run(
                self._container.argv(f"cat {shlex.quote(in_path)}"), stdout=target, stderr=subprocess.PIPE, check=False
            )
        if done.returncode != 0:
            raise AnsibleError(f"could not copy {self._container.name}:{in_path} to {out_path}: {done.stderr!r}")

    def reset(self) -> None:
        self._container = None
        self._connected = False

    def close(self) -> None:
        self._connected = False
