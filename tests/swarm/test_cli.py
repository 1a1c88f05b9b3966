"""``claw swarm incidents``: list and search the store from a shell."""

from __future__ import annotations

import json

import yaml
from claw.cli import main
from claw.swarm.store import Incident, IncidentStore


def test_incidents_are_listed_and_searched(tmp_path, capsys):
    db = tmp_path / "incidents.db"
    store = IncidentStore(db)
    store.record(
        Incident("alpha", "stopped", "stopped: main process 42 is stopped", "killed and restarted", ("hello",))
    )
    store.record(Incident("beta", "crash_loop", "crash loop: 5 restarts within 600 s", "not restarted again"))
    store.close()

    assert main(["swarm", "incidents", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.index("beta: crash loop") < out.index("alpha: stopped")
    assert "    | hello" in out

    assert main(["swarm", "incidents", "--db", str(db), "--search", "crash loop", "--json"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["worker"] == "beta"

    config = tmp_path / "swarm.yml"
    worker = {"name": "alpha", "unit": "w@alpha.service", "health_url": "http://127.0.0.1:1/healthz"}
    config.write_text(yaml.safe_dump({"workers": [worker], "store": {"path": str(db)}}))
    assert main(["swarm", "incidents", "--config", str(config), "--worker", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "alpha: stopped" in out and "beta" not in out

    assert main(["swarm", "incidents", "--db", str(db), "--search", "nothing-like-this"]) == 0
    assert capsys.readouterr().out == "no incidents\n"
    assert main(["swarm", "incidents", "--db", str(db), "--search", " "]) == 2
    assert main(["swarm", "incidents", "--db", str(tmp_path / "none.db")]) == 1
    assert "no incident database" in capsys.readouterr().err
