"""Ansible's own templating of the repository's variables and templates, on the controller, with no play.

A :class:`Node` holds what a play would give one host of the demo inventory: the appliance-wide defaults
(playbooks/group_vars/all.yml), the named roles' defaults and vars, the inventory's groups and a few facts. Tests
render a role's template or an expression with it, after changing what they need (``overrides``), to check what
the roles derive rather than what a file says.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[1]
APPLIANCE_DEFAULTS = REPO / "playbooks" / "group_vars" / "all.yml"

# The demo inventory's shape: one claw and one crush node of one cluster.
HOSTS = {"claw": "10.89.77.10", "crush": "10.89.77.11"}

# The collections' filters (ansible.utils.ipwrap, community.general.dict_kv) as ansible-playbook finds them.
init_plugin_loader()


def trusted(value: Any) -> Any:
    """``value`` with every string marked as a template, as Ansible marks what it reads from vars files."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value


class Node:
    """The variables of one host (``claw`` or ``crush``) with the roles ``roles`` loaded."""

    def __init__(self, roles: Iterable[str], host: str = "claw", **overrides: Any) -> None:
        self.loader = DataLoader()
        self.host = host
        variables: dict[str, Any] = {}
        for role in roles:
            for name in ("defaults/main.yml", "vars/main.yml"):
                path = REPO / "roles" / role / name
                if path.exists():
                    variables.update(trusted(self.loader.load_from_file(str(path)) or {}))
        variables.update(trusted(self.loader.load_from_file(str(APPLIANCE_DEFAULTS))))
        variables.update(trusted(overrides))
        hostvars: dict[str, dict[str, Any]] = {}
        for name, address in HOSTS.items():
            facts = {
                "hostname": name,
                "default_ipv4": {"address": address},
                "all_ipv4_addresses": [address],
                "architecture": "x86_64",
                "processor_vcpus": 4,
            }
            hostvars[name] = {
                **variables,
                "inventory_hostname": name,
                "ansible_host": address,
                "group_names": [name],
                "ansible_facts": facts,
            }
        variables.update(hostvars[host])
        variables["hostvars"] = hostvars
        variables["groups"] = {"all": list(HOSTS), "claw": ["claw"], "crush": ["crush"], "ungrouped": []}
        variables["ansible_managed"] = "Ansible managed"
        variables["role_path"] = str(REPO / "roles" / (list(roles) or ["base"])[0])
        self.variables = variables

    def value(self, expression: str, **extra: Any) -> Any:
        """``expression`` (a variable name or a Jinja expression) as the host sees it."""
        text = expression if "{{" in expression else "{{ " + expression + " }}"
        templar = Templar(loader=self.loader, variables={**self.variables, **trusted(extra)})
        return templar.template(trust_as_template(text))

    def template(self, role: str, name: str, **extra: Any) -> str:
        """The role's template ``name`` rendered for the host, as the template module writes it."""
        source = (REPO / "roles" / role / "templates" / name).read_text(encoding="utf-8")
        templar = Templar(loader=self.loader, variables={**self.variables, **trusted(extra)})
        return templar.template(trust_as_template(source), escape_backslashes=False)
