"""The base role takes what differs on a distribution from the facts: Ubuntu 22.04 (JetPack 6) is not Debian 12.

The candidates are the role's own include_vars task (tasks/preflight.yml) rendered for each distribution's facts;
the first file of them in roles/base/vars/ is loaded over the role's vars, as include_vars does, and the zram
config is rendered with the result. jammy's zram-generator (0.3.2) ignores zram-size= and sizes the device by
zram-fraction= and max-zram-size=; bookworm's (1.1) takes the zram-size= expression.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader

from tests.ansible_render import Node, trusted

ROLE = Path(__file__).resolve().parents[1] / "roles" / "base"

# (distribution, major version, release, os family): what Ansible gathers on each target.
JETPACK6 = ("Ubuntu", "22", "jammy", "Debian")
DEBIAN12 = ("Debian", "12", "bookworm", "Debian")
PI_OS = ("Debian", "12", "bookworm", "Debian")  # Raspberry Pi OS bookworm (64-bit) reports itself as Debian
UBUNTU24 = ("Ubuntu", "24", "noble", "Debian")


def _preflight_task(name: str) -> dict[str, Any]:
    tasks = yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text(encoding="utf-8"))
    (task,) = [task for task in tasks if task.get("name") == name]
    return task


def _facts(target: tuple[str, str, str, str]) -> dict[str, str]:
    distribution, major, release, family = target
    return {
        "distribution": distribution,
        "distribution_major_version": major,
        "distribution_release": release,
        "distribution_version": f"{major}.04" if distribution == "Ubuntu" else major,
        "os_family": family,
    }


def node_on(target: tuple[str, str, str, str], **overrides: Any) -> Node:
    """The base role's variables on a node of ``target``, with the distribution's vars file loaded as the role's
    include_vars task picks it."""
    node = Node(["base"], host="crush", **overrides)
    node.variables["ansible_facts"] = {**node.variables["ansible_facts"], **_facts(target)}
    task = _preflight_task("Load what differs on this distribution")
    candidates = task["vars"]["__base_distribution_files"]["files"]
    assert "first_found" in task["ansible.builtin.include_vars"]["file"]
    names = [node.value(candidate) for candidate in candidates]
    found = next(ROLE / "vars" / name for name in names if (ROLE / "vars" / name).is_file())
    node.variables.update(trusted(DataLoader().load_from_file(str(found))))
    node.variables.update(trusted(overrides))  # extra vars still win
    return node


def zram_conf(node: Node) -> list[str]:
    return [line for line in node.template("base", "zram-generator.conf.j2").splitlines() if not line.startswith("#")]


def test_jetpack6_takes_ubuntu_2204s_file_and_the_others_debians():
    assert node_on(JETPACK6).value("_base_distribution_vars") == "Ubuntu-22.yml"
    for target in (DEBIAN12, PI_OS, UBUNTU24):
        assert node_on(target).value("_base_distribution_vars") == "Debian.yml", target


def test_zram_is_sized_in_the_terms_of_jammys_zram_generator():
    assert zram_conf(node_on(JETPACK6)) == [
        "[zram0]",
        "zram-fraction = 0.5",
        "max-zram-size = 4096",
        "compression-algorithm = zstd",
    ]
    assert "zram-fraction = 0.25" in zram_conf(node_on(JETPACK6, base_zram_size="ram / 4"))
    assert "max-zram-size = none" in zram_conf(node_on(JETPACK6, base_zram_size="ram / 4"))
    assert "max-zram-size = 2048" in zram_conf(node_on(JETPACK6, base_zram_size="min(ram * 0.75, 2048)"))


@pytest.mark.parametrize("target", [DEBIAN12, UBUNTU24])
def test_zram_keeps_the_size_expression_where_zram_generator_takes_it(target):
    conf = zram_conf(node_on(target))
    assert "zram-size = min(ram / 2, 4096)" in conf
    assert not [line for line in conf if line.startswith(("zram-fraction", "max-zram-size"))]


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        ("min(ram / 2, 4096)", True),
        ("ram / 4", True),
        ("min(ram * 0.25, 1024)", True),
        ("max(ram / 2, 1024)", False),
        ("4096", False),
    ],
)
def test_a_size_jammys_zram_generator_cannot_express_is_refused(size, accepted):
    task = _preflight_task("Check that this distribution's zram-generator can size the device as asked")
    node = node_on(JETPACK6, base_zram_size=size)
    assert node.value(task["when"]) is True
    assert node.value(task["ansible.builtin.assert"]["that"]) is accepted
    # Debian 12 takes any expression: the check does not apply there.
    assert node_on(DEBIAN12, base_zram_size=size).value(task["when"]) is False


@pytest.mark.ansible
def test_the_preflight_loads_the_distribution_file_of_this_machine(run_playbook):
    play = """
- name: The base preflight
  hosts: all
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Run it
      ansible.builtin.include_role:
        name: base
        tasks_from: preflight
    - name: Show the distribution file
      ansible.builtin.debug:
        msg: "DISTRIBUTION FILE {{ _base_distribution_vars }}"
"""
    result = run_playbook(play, {"base_hostname": "claw"})
    output = result.stdout + result.stderr
    assert re.search(r"TASK \[base : Load what differs on this distribution\][^\n]*\nok: \[localhost\]", output), output
    assert "DISTRIBUTION FILE Debian.yml" in output or "DISTRIBUTION FILE Ubuntu-22.yml" in output, output
