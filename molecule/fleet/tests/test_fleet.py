"""A fleet update in waves: a canary that passes, a cluster that fails its gate and is rolled back, one untouched."""

from __future__ import annotations


def test_converge_records_the_first_release(update):
    for cluster, before in update.before.items():
        release = before.current.rsplit("/", 1)[-1]
        assert before.bom["components"]["claw_apps"]["release"] == release, cluster
        assert before.bom["versions"]["claw_apps"] == release
        assert before.bom["node"] == f"fleet-{cluster}"
        assert before.bom["os"]["distribution"] == "Debian"
        assert before.last_update["playbook"] == "playbooks/site.yml"
        assert before.last_update["time"].endswith("+00:00")
        assert before.active == "active" and release in before.process


def test_the_run_stops_at_the_failed_wave(update):
    assert update.run.rc != 0
    assert "Cluster b failed its update and was rolled back" in update.run.text
    assert "release refused by cluster b" in update.run.text


def test_the_canary_runs_the_new_release(update):
    a = update.after["a"]
    new = a.current.rsplit("/", 1)[-1]
    assert ".post1-" in new and a.current != update.before["a"].current
    assert a.current in a.exec_start and a.current in a.process and a.active == "active"
    assert a.bom["components"]["claw_apps"] == {
        "release": new,
        "path": a.current,
        "previous": update.before["a"].current.rsplit("/", 1)[-1],
        "releases": a.releases,
    }
    assert a.last_update["playbook"] == "playbooks/update.yml" and a.last_update["result"] == "applied"


def test_the_failed_cluster_is_rolled_back(update):
    before, b = update.before["b"], update.after["b"]
    assert b.current == before.current
    assert any(".post1-" in release for release in b.releases)  # installed, refused, kept for later
    assert before.current in b.exec_start and ".post1-" not in b.exec_start
    assert before.current in b.process and b.active == "active"
    # The same bill of materials, but for the refused release now on disk.
    assert b.bom["components"]["claw_apps"].pop("releases") != before.bom["components"]["claw_apps"]["releases"]
    assert b.bom == {
        **before.bom,
        "components": {
            **before.bom["components"],
            "claw_apps": {k: v for k, v in before.bom["components"]["claw_apps"].items() if k != "releases"},
        },
    }
    assert b.last_update["result"] == "rolled back" and b.last_update["playbook"] == "playbooks/update.yml"


def test_later_waves_are_untouched(update):
    assert update.after["c"] == update.before["c"]
    assert not any(".post1-" in release for release in update.after["c"].releases)


def test_rollback_on_demand(update, rollback):
    run, a = rollback
    assert run.rc == 0, run.output[-3000:]
    assert a.current == update.before["a"].current
    assert a.current in a.exec_start and a.current in a.process and a.active == "active"
    assert a.bom["components"]["claw_apps"]["previous"] == update.after["a"].current.rsplit("/", 1)[-1]
    assert a.last_update["playbook"] == "playbooks/rollback.yml" and a.last_update["result"] == "rollback"
