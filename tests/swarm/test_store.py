"""The incident store: recorded, searchable with FTS5 (any text is safe to search), bounded by count and age."""

from __future__ import annotations

import pytest
from claw.swarm.store import Incident, IncidentStore, StoreError, match_expression


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_incidents_are_recorded_and_found_by_any_field(tmp_path):
    store = IncidentStore(tmp_path / "db" / "incidents.db")
    first = store.record(
        Incident("alpha", "stopped", "stopped: main process 42 is stopped", "killed and restarted", ("boot ok", "x"))
    )
    second = store.record(Incident("beta", "not_ready", "not_ready: no answer within 2 s", "killed and restarted"))
    assert (first.id, second.id) == (1, 2)
    assert first.at > 0
    assert [i.id for i in store.recent()] == [2, 1]
    assert [i.id for i in store.recent(worker="alpha")] == [1]
    assert store.recent()[1].logs == ("boot ok", "x")
    assert [i.id for i in store.search("restarted")] == [2, 1]
    assert [i.id for i in store.search("boot")] == [1]
    assert [i.id for i in store.search("beta answer")] == [2]
    assert store.search("alpha answer") == []
    store.close()
    reopened = IncidentStore(tmp_path / "db" / "incidents.db")
    assert [i.id for i in reopened.search("stopped")] == [1]


@pytest.mark.parametrize("text", ['"', "NEAR(", "a OR", "col:x", "*", "-x", "'; DROP TABLE incidents; --"])
def test_search_text_is_never_read_as_fts_syntax(tmp_path, text):
    store = IncidentStore(tmp_path / "incidents.db")
    store.record(Incident("alpha", "stopped", "stopped", "restarted"))
    assert store.search(text) == []
    assert len(store.recent()) == 1


def test_an_empty_search_is_refused():
    with pytest.raises(ValueError, match="empty"):
        match_expression("  ")


def test_the_store_keeps_at_most_max_incidents_and_drops_old_ones(tmp_path):
    clock = Clock()
    store = IncidentStore(tmp_path / "incidents.db", max_incidents=3, max_age_days=1, clock=clock)
    for n in range(5):
        store.record(Incident("alpha", "stopped", f"symptom{n}", "restarted"))
    assert [i.symptom for i in store.recent()] == ["symptom4", "symptom3", "symptom2"]
    assert store.search("symptom0") == []  # pruned from the index too
    clock.now += 2 * 86400
    store.record(Incident("alpha", "stopped", "fresh", "restarted"))
    assert [i.symptom for i in store.recent()] == ["fresh"]
    assert [i.symptom for i in store.search("fresh")] == ["fresh"]


def test_an_unusable_path_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot open the incident database"):
        IncidentStore(tmp_path / "file" / "incidents.db")
