"""Version N to N+1 with playbooks/update.yml, and back with playbooks/rollback.yml, on one claw node.

The tests run in file order: N (as converged), then N+1 (the session's update), then N again (its rollback).
"""

from __future__ import annotations

from conftest import NODE, State, Step, Versions


def _release(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _in_use(state: State) -> dict[str, str]:
    return {name: _release(path) for name, path in state.current.items()}


def assert_runs(state: State, version: Versions) -> None:
    """Every component of the version in use from its own release directory, its service healthy."""
    claw_release = _release(state.current["claw_apps"])
    assert state.current["nodejs"] == f"/opt/nodejs/releases/{version.nodejs}"
    assert state.current["openclaw"] == f"/opt/openclaw/releases/{version.openclaw}"
    assert state.current["claw_apps"] == f"/opt/claw/releases/{claw_release}"
    assert claw_release.startswith(f"{version.claw_apps}-"), claw_release
    # What the releases report of themselves.
    assert state.node_version == f"v{version.nodejs}"
    assert state.openclaw_version.startswith(f"OpenClaw {version.openclaw} "), state.openclaw_version
    assert state.claw_version.split()[-1] == version.claw_apps
    # The gateway runs on this Node.js release and answers ready.
    assert state.gateway_active == "active"
    assert state.gateway_exe == f"/opt/nodejs/releases/{version.nodejs}/bin/node"
    assert state.gateway_ready.get("ready") is True and state.gateway_ready.get("failing") == [], state.gateway_ready
    # The running gateway (not only the files on disk) is this OpenClaw release.
    assert state.gateway_version == version.openclaw
    # The LED daemon runs from the claw apps' release in use.
    assert state.leds_active == "active"
    assert f"{state.current['claw_apps']}/venv/" in state.leds_exec_start
    assert f"{state.current['claw_apps']}/venv/" in state.leds_process


def assert_recorded(state: State, version: Versions) -> None:
    """The bill of materials and `claw status --bom-file` name the releases in use."""
    in_use = _in_use(state)
    assert state.bom["node"] == NODE
    assert state.bom["versions"] == {
        "claw_apps": in_use["claw_apps"],
        "openclaw": version.openclaw,
        "nodejs": version.nodejs,
    }
    for name, path in state.current.items():
        component = state.bom["components"][name]
        assert (component["release"], component["path"], component["releases"]) == (
            in_use[name],
            path,
            state.releases[name],
        ), name
    assert state.bom["engine"] == {"name": "", "version": ""} and state.bom["models"] == []
    shown = {v["component"]: v["version"] for v in state.status["versions"] if v["node"] == NODE}
    assert {k: shown.get(k) for k in ("claw", "openclaw", "nodejs")} == {
        "claw": in_use["claw_apps"],
        "openclaw": version.openclaw,
        "nodejs": version.nodejs,
    }, state.status.get("versions")
    assert state.status["bom"] == state.bom


def test_the_versions_differ(version_n, version_n1):
    assert version_n.nodejs != version_n1.nodejs
    assert version_n.openclaw != version_n1.openclaw
    assert version_n.claw_apps != version_n1.claw_apps


# --- version N --------------------------------------------------------------------------------------------------


def test_n_runs(at_n: Step, version_n):
    assert_runs(at_n.state, version_n)


def test_n_is_recorded(at_n: Step, version_n):
    assert_recorded(at_n.state, version_n)
    assert at_n.state.last_update["playbook"] == "playbooks/site.yml"
    assert at_n.state.last_update["result"] == "applied"
    # A first install: one release of each, nothing to go back to.
    assert all(len(releases) == 1 for releases in at_n.state.releases.values()), at_n.state.releases
    assert all(not c["previous"] for c in at_n.state.bom["components"].values())


# --- update to N+1 ----------------------------------------------------------------------------------------------


def test_update_succeeds(at_n1: Step):
    assert at_n1.run is not None
    assert at_n1.run.rc == 0 and at_n1.run.failed == 0, at_n1.run.output[-4000:]
    assert at_n1.state.last_update["playbook"] == "playbooks/update.yml"
    assert at_n1.state.last_update["result"] == "applied"


def test_n1_runs_from_its_own_releases(at_n1: Step, version_n1):
    assert_runs(at_n1.state, version_n1)


def test_n1_restarted_the_gateway(at_n: Step, at_n1: Step):
    assert at_n1.state.gateway_pid != at_n.state.gateway_pid


def test_n_stays_on_disk(at_n: Step, at_n1: Step):
    for name, path in at_n.state.current.items():
        assert _release(path) in at_n1.state.releases[name], name
        assert len(at_n1.state.releases[name]) == 2, at_n1.state.releases


def test_n1_is_recorded(at_n: Step, at_n1: Step, version_n1):
    assert_recorded(at_n1.state, version_n1)
    previous = {name: c["previous"] for name, c in at_n1.state.bom["components"].items()}
    assert previous == _in_use(at_n.state)


# --- rollback to N ----------------------------------------------------------------------------------------------


def test_rollback_succeeds(back_at_n: Step):
    assert back_at_n.run is not None
    assert back_at_n.run.rc == 0 and back_at_n.run.failed == 0, back_at_n.run.output[-4000:]
    assert back_at_n.state.last_update["playbook"] == "playbooks/rollback.yml"
    assert back_at_n.state.last_update["result"] == "rollback"


def test_n_runs_again(at_n: Step, back_at_n: Step, version_n):
    assert_runs(back_at_n.state, version_n)
    assert back_at_n.state.current == at_n.state.current


def test_rollback_restarted_the_gateway(at_n1: Step, back_at_n: Step):
    assert back_at_n.state.gateway_pid != at_n1.state.gateway_pid


def test_n_is_recorded_again(at_n: Step, at_n1: Step, back_at_n: Step, version_n):
    assert_recorded(back_at_n.state, version_n)
    assert back_at_n.state.bom["versions"] == at_n.state.bom["versions"]
    # N+1 stays on disk and is the release to go forward to.
    assert back_at_n.state.releases == at_n1.state.releases
    previous = {name: c["previous"] for name, c in back_at_n.state.bom["components"].items()}
    assert previous == _in_use(at_n1.state)
