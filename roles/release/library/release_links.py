#!/usr/bin/python
"""Read or switch the `current` links of the components installed side by side (releases/<id>)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:
    from ansible.module_utils.basic import AnsibleModule
except ImportError:  # run as the node's boot-time rollback (--rollback-journal), where Ansible is not installed
    AnsibleModule = None  # type: ignore[assignment,misc]

DOCUMENTATION = r"""
module: release_links
short_description: Read or switch the current release of side-by-side installs
description:
  - Each component keeps its releases in C(<root>/releases/<id>) and links the one in use from C(<root>/current).
  - C(action=query) returns, per installed component, the release in use, the releases on disk and the one before
    it (C(previous)), taken from the bill of materials of the last successful run (C(bom)).
  - C(action=switch) points C(current) at another release (atomically), rewrites the unit files that name the old
    release's path (units render C(claw_apps_venv), a release path, into C(ExecStart)) and returns the units to
    restart: those rewritten and the component's own C(units) that exist.
  - The update journal (C(journal), a JSON file) makes an update recoverable without the controller.
    C(action=journal_open) writes the release in use of each component (C(snapshot)), the components and the
    unit directory, refusing while another journal is open; C(journal_record) appends each switch since (a
    component whose C(current) no longer links its last recorded release); C(journal_close) marks it closed with
    C(result). C(query) returns it (C(journal)). Every write is atomic (a temporary file, fsync, rename).
  - Run as a script, C(release_links.py --rollback-journal PATH) switches every component of an open journal back to
    its snapshot (state put back as a rollback does), reloads systemd when unit files were rewritten, closes the
    journal and writes C(last-update.json) beside it: the node's own rollback at boot, needing no Ansible.
  - A component's C(state) lists directories its releases migrate on first start (a database schema an older
    release refuses). C(action=save_state) copies them to C(<root>/state/<release>) for the releases in C(targets);
    a C(switch) with C(restore_state) keeps the state in use as the copy of the release it leaves and puts back
    the copy of the release it returns to. The component's units must be stopped for either.
options:
  components:
    description: Components, each C({name, root, units}) and optionally C(state) (a list of directories).
    type: list
    elements: dict
    required: true
  action:
    description: What to do.
    type: str
    choices: [query, switch, save_state, journal_open, journal_record, journal_close]
    default: query
  journal: {description: The update journal (C(journal_*) actions; read by C(query))., type: path}
  run:
    description: With C(journal_open), C({playbook, version}) of the run; with C(journal_close), C({result}).
    type: dict
    default: {}
  restore_state:
    description: With C(switch), swap the components' state for the copy of the target release.
    type: bool
    default: false
  targets:
    description: For C(switch), component name to release id (or absolute release path); others are left alone.
    type: dict
    default: {}
  bom: {description: Bill of materials of the last successful run (for C(previous))., type: path}
  unit_dir: {description: Where the appliance's unit files live., type: path, default: /etc/systemd/system}
author: PicoCluster Claw
"""

RETURN = r"""
components:
  description: Per installed component, C({release, path, previous, releases}).
  returned: always
  type: dict
in_use: {description: Component name to the release id in use., returned: always, type: dict}
previous: {description: Component name to the release before the one in use, where known., returned: always, type: dict}
switched: {description: Per switched component, C({from, to, state_restored})., returned: always, type: dict}
saved: {description: Per component, the state directories C(save_state) copied., returned: always, type: dict}
units: {description: Units to restart after a switch (sorted)., returned: always, type: list}
journal: {description: The update journal's content (C({}) where there is none)., returned: always, type: dict}
"""


def _release_dirs(root: Path) -> list[str]:
    releases = root / "releases"
    if not releases.is_dir():
        return []
    return sorted(p.name for p in releases.iterdir() if p.is_dir() and not p.name.startswith("."))


def _current(root: Path) -> Path | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    target = link.readlink()
    return target if target.is_absolute() else (root / target)


def _old_bom(path: str | None) -> dict[str, Any]:
    if not path or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    components = data.get("components") if isinstance(data, dict) else None
    return components if isinstance(components, dict) else {}


def query(components: list[dict[str, Any]], bom: str | None) -> dict[str, dict[str, Any]]:
    """The release in use of each installed component and the one before it."""
    old = _old_bom(bom)
    found: dict[str, dict[str, Any]] = {}
    for component in components:
        root = Path(component["root"])
        current = _current(root)
        if current is None:
            continue
        release = current.name
        releases = _release_dirs(root)
        before = old.get(component["name"]) or {}
        if before.get("release") and before["release"] != release:
            previous = before["release"]
        else:
            previous = before.get("previous") or ""
        if previous not in releases or previous == release:
            previous = ""
        found[component["name"]] = {
            "release": release,
            "path": str(current),
            "previous": previous,
            "releases": releases,
        }
    return found


def rewrite_units(unit_dir: Path, old: str, new: str, check: bool) -> list[str]:
    """Unit files that name the old release's path, rewritten to the new one's."""
    pattern = re.compile(re.escape(old.rstrip("/")) + r"(?=/|\s|$)", re.M)
    rewritten = []
    if not unit_dir.is_dir():
        return rewritten
    for unit in sorted(unit_dir.iterdir()):
        if unit.is_symlink() or not unit.is_file() or unit.suffix not in (".service", ".timer", ".socket"):
            continue
        text = unit.read_text(encoding="utf-8")
        replaced = pattern.sub(new.rstrip("/"), text)
        if replaced != text:
            if not check:
                partial = unit.with_name(f".{unit.name}.release")
                partial.write_text(replaced, encoding="utf-8")
                partial.chmod(unit.stat().st_mode & 0o777)
                partial.replace(unit)
            rewritten.append(unit.name)
    return rewritten


def switch_link(root: Path, target: Path, check: bool) -> None:
    if check:
        return
    partial = root / ".current.release"
    if partial.is_symlink() or partial.exists():
        partial.unlink()
    partial.symlink_to(target)
    partial.replace(root / "current")


def switch(
    components: list[dict[str, Any]], targets: dict[str, str], unit_dir: Path, check: bool, with_state: bool = False
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Point each targeted component's current link at its target release; the units to restart."""
    by_name = {component["name"]: component for component in components}
    unknown = sorted(set(targets) - set(by_name))
    if unknown:
        raise ValueError(f"unknown components {unknown}; known: {sorted(by_name)}")
    switched: dict[str, dict[str, Any]] = {}
    units: set[str] = set()
    for name, wanted in targets.items():
        if not wanted:
            continue
        root = Path(by_name[name]["root"])
        current = _current(root)
        target = Path(wanted) if str(wanted).startswith("/") else root / "releases" / str(wanted)
        if current is not None and current == target:
            continue
        if not target.is_dir():
            raise ValueError(f"{name}: release {target} is not installed")
        old = str(current) if current is not None else ""
        restored = restore_state(by_name[name], Path(old).name if old else "", target.name, check) if with_state else []
        switch_link(root, target, check)
        if old:
            units.update(rewrite_units(unit_dir, old, str(target), check))
        units.update(u for u in by_name[name].get("units") or [] if (unit_dir / u).exists() or _packaged(u))
        switched[name] = {"from": old, "to": str(target), "state_restored": restored}
    return switched, sorted(units)


def _state_copy(root: Path, release: str, path: Path) -> Path:
    return root / "state" / release / path.as_posix().strip("/").replace("/", "__")


def _copy_tree(source: Path, destination: Path) -> None:
    """``cp -a``: ownership, modes and times kept (the state belongs to the service's user)."""
    partial = destination.with_name(f".{destination.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--", str(source), str(partial)], check=True, capture_output=True)
    if destination.exists():
        shutil.rmtree(destination)
    partial.rename(destination)


def save_state(components: list[dict[str, Any]], releases: dict[str, str], check: bool) -> dict[str, list[str]]:
    """Copy each listed component's state directories to <root>/state/<release>; what was saved."""
    saved: dict[str, list[str]] = {}
    for component in components:
        release = releases.get(component["name"])
        if not release:
            continue
        root = Path(component["root"])
        for directory in map(Path, component.get("state") or []):
            if directory.is_dir():
                if not check:
                    _copy_tree(directory, _state_copy(root, release, directory))
                saved.setdefault(component["name"], []).append(str(directory))
    return saved


def restore_state(component: dict[str, Any], leaving: str, returning: str, check: bool) -> list[str]:
    """Keep the state in use as ``leaving``'s copy and put ``returning``'s copy in its place; what was restored."""
    root = Path(component["root"])
    restored = []
    for directory in map(Path, component.get("state") or []):
        copy = _state_copy(root, returning, directory)
        if not copy.is_dir():
            continue  # nothing saved for that release: its state is the one in use
        if not check:
            if directory.is_dir() and leaving:
                _copy_tree(directory, _state_copy(root, leaving, directory))
            _copy_tree(copy, directory)
        restored.append(str(directory))
    return restored


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: a crash leaves the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    partial.chmod(0o644)
    partial.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_journal(path: str | Path | None) -> dict[str, Any]:
    if not path or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an update journal")
    return data


def journal_open(path: Path, components: list[dict[str, Any]], unit_dir: Path, run: dict, check: bool) -> dict:
    """Open a journal with the releases in use; refused while another one is open (roll that one back first)."""
    old = read_journal(path)
    if old.get("status") == "open":
        raise ValueError(f"{path}: the update opened {old.get('opened')} was not closed; roll it back first")
    journal = {
        "format": 1,
        "status": "open",
        "opened": _now(),
        "playbook": str(run.get("playbook") or ""),
        "version": str(run.get("version") or ""),
        "components": components,
        "unit_dir": str(unit_dir),
        "snapshot": {name: found["release"] for name, found in query(components, None).items()},
        "switches": [],
    }
    if not check:
        write_json(path, journal)
    return journal


def journal_record(path: Path, components: list[dict[str, Any]], check: bool) -> tuple[dict, list[dict]]:
    """Append the switches made since the last record to an open journal; the new entries."""
    journal = read_journal(path)
    if journal.get("status") != "open":
        return journal, []
    last = {name: str(release) for name, release in (journal.get("snapshot") or {}).items()}
    for switch_ in journal.get("switches") or []:
        last[switch_["component"]] = Path(switch_["to"]).name
    added = []
    for name, found in query(components, None).items():
        if found["release"] != last.get(name):
            added.append({"component": name, "from": last.get(name, ""), "to": found["path"], "time": _now()})
    if added:
        journal["switches"] = [*(journal.get("switches") or []), *added]
        if not check:
            write_json(path, journal)
    return journal, added


def journal_close(path: Path, result: str, check: bool) -> tuple[dict, bool]:
    """Mark an open journal closed (the record stays); whether one was open."""
    journal = read_journal(path)
    if journal.get("status") != "open":
        return journal, False
    journal.update(status="closed", closed=_now(), result=result)
    if not check:
        write_json(path, journal)
    return journal, True


def rollback_journal(path: Path) -> int:
    """The node's own rollback (boot): switch back to an open journal's snapshot, close it, record the run."""
    journal = read_journal(path)
    if journal.get("status") != "open":
        print(f"{path}: no open update journal, nothing to roll back")
        return 0
    components = journal["components"]
    known = {component["name"] for component in components}
    targets = {name: release for name, release in journal.get("snapshot", {}).items() if name in known}
    unit_dir = Path(journal.get("unit_dir") or "/etc/systemd/system")
    switched, units = switch(components, targets, unit_dir, check=False, with_state=True)
    systemctl = shutil.which("systemctl")
    if switched and systemctl and Path("/run/systemd/system").is_dir():
        # Unit files may name a release's path: reload them before the units (ordered after this one) start.
        subprocess.run([systemctl, "daemon-reload"], check=False)
    journal_close(path, "rolled back at boot", check=False)
    record = {
        "time": _now(),
        "playbook": "claw-release-rollback.service (boot)",
        "version": journal.get("version", ""),
        "result": "rolled back",
    }
    write_json(path.with_name("last-update.json"), record)
    for name, entry in switched.items():
        print(f"{name}: {entry['from']} -> {entry['to']} (state restored: {entry['state_restored'] or 'none'})")
    opened = journal.get("opened")
    print(f"{path}: the update opened {opened} was rolled back ({len(switched)} switched, units {units})")
    return 0


def _packaged(unit: str) -> bool:
    return any((Path(d) / unit).exists() for d in ("/lib/systemd/system", "/usr/lib/systemd/system"))


ACTIONS = ["query", "switch", "save_state", "journal_open", "journal_record", "journal_close"]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--rollback-journal":
        sys.exit(rollback_journal(Path(sys.argv[2])))
    module = AnsibleModule(
        argument_spec={
            "components": {"type": "list", "elements": "dict", "required": True},
            "action": {"type": "str", "choices": ACTIONS, "default": "query"},
            "journal": {"type": "path"},
            "run": {"type": "dict", "default": {}},
            "restore_state": {"type": "bool", "default": False},
            "targets": {"type": "dict", "default": {}},
            "bom": {"type": "path"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    params = module.params
    for component in params["components"]:
        if not {"name", "root"} <= set(component):
            module.fail_json(msg=f"each component needs a name and a root, got {component}")
    switched: dict[str, dict[str, Any]] = {}
    saved: dict[str, list[str]] = {}
    units: list[str] = []
    changed = False
    journal_path = Path(params["journal"]) if params["journal"] else None
    if params["action"].startswith("journal_") and journal_path is None:
        module.fail_json(msg=f"{params['action']} needs a journal")
    try:
        journal = read_journal(journal_path)
        if params["action"] == "journal_open":
            journal = journal_open(
                journal_path, params["components"], Path(params["unit_dir"]), params["run"], module.check_mode
            )
            changed = True
        elif params["action"] == "journal_record":
            journal, added = journal_record(journal_path, params["components"], module.check_mode)
            changed = bool(added)
        elif params["action"] == "journal_close":
            result = str(params["run"].get("result") or "applied")
            journal, changed = journal_close(journal_path, result, module.check_mode)
        elif params["action"] == "switch":
            unit_dir = Path(params["unit_dir"])
            switched, units = switch(
                params["components"], params["targets"], unit_dir, module.check_mode, params["restore_state"]
            )
        elif params["action"] == "save_state":
            saved = save_state(params["components"], params["targets"], module.check_mode)
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        module.fail_json(msg=f"{error} {detail.decode(errors='replace').strip()}".strip())
    components = query(params["components"], params["bom"])
    module.exit_json(
        changed=bool(switched or saved or changed),
        journal=journal,
        saved=saved,
        components=components,
        in_use={name: found["release"] for name, found in components.items()},
        previous={name: found["previous"] for name, found in components.items() if found["previous"]},
        switched=switched,
        units=units,
    )


if __name__ == "__main__":
    main()
