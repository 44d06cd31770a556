"""Incident lifecycle in the store: one per fingerprint, legal transitions, one claimant."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lazarus.model import Anomaly, IncidentState
from lazarus.store import InvalidTransition, Store


def anomaly(host: str = "web-1", symptom: str = "service_down") -> Anomaly:
    return Anomaly(
        host=host,
        service="api",
        symptom=symptom,
        severity="critical",
        summary="probe failed",
        at=1000.0,
        labels={"team": "core"},
    )


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_one_active_incident_per_fingerprint(store: Store) -> None:
    first, created = store.open_incident(anomaly())
    again, created_again = store.open_incident(anomaly())
    other, _ = store.open_incident(anomaly(host="web-2"))
    assert created and not created_again
    assert again.id == first.id
    assert other.id != first.id
    assert first.fingerprint == "api@web-1/service_down"
    assert first.labels == {"team": "core"}


def test_lifecycle_stamps_every_stage(store: Store) -> None:
    incident, _ = store.open_incident(anomaly())
    store.mark_notified(incident.id, at=1001.0)
    assert store.get(incident.id).state is IncidentState.NOTIFIED
    claimed = store.claim(incident.id)
    assert claimed is not None and claimed.state is IncidentState.REMEDIATING
    done = store.transition(incident.id, IncidentState.RESOLVED, reason="verified", at=1010.0)
    assert (done.detected_at, done.notified_at) == (1000.0, 1001.0)
    assert done.action_at is not None and done.verified_at == 1010.0 == done.closed_at
    assert done.reason == "verified"
    # Resolved frees the fingerprint: the same symptom later is a new incident.
    reopened, created = store.open_incident(anomaly())
    assert created and reopened.id != incident.id


def test_illegal_transition_is_refused(store: Store) -> None:
    incident, _ = store.open_incident(anomaly())
    store.transition(incident.id, IncidentState.RESOLVED)
    with pytest.raises(InvalidTransition, match="resolved -> remediating"):
        store.transition(incident.id, IncidentState.REMEDIATING)


def test_notified_after_claim_keeps_remediating(store: Store) -> None:
    incident, _ = store.open_incident(anomaly())
    store.claim(incident.id)
    store.mark_notified(incident.id)
    got = store.get(incident.id)
    assert got.state is IncidentState.REMEDIATING and got.notified_at is not None


def test_exactly_one_of_many_concurrent_claims_wins(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    setup = Store(path)
    incident, _ = setup.open_incident(anomaly())
    setup.close()
    results: list[object] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        own = Store(path)  # a separate connection, as a second worker would have
        barrier.wait()
        results.append(own.claim(incident.id))
        own.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(r is not None for r in results) == 1


def test_deliveries_and_actions_are_recorded_with_attempts(store: Store) -> None:
    incident, _ = store.open_incident(anomaly())
    store.record_delivery(incident.id, "opened", "oncall", False, "HTTP 503")
    store.record_delivery(incident.id, "opened", "oncall", True)
    store.record_action(incident.id, "ssh.restart", "web-1", "automation", True, "x" * 5000)
    attempts = [(d.attempt, d.ok, d.error) for d in store.deliveries(incident.id)]
    assert attempts == [(1, False, "HTTP 503"), (2, True, "")]
    (action,) = store.actions(incident.id)
    assert action.actor == "automation" and len(action.detail) == 2000


def test_streaks_persist(store: Store) -> None:
    store.save_streaks({"probe:a": 2, "probe:b": 0})
    assert store.streaks() == {"probe:a": 2}
    store.save_streaks({"probe:c": 1})  # another shard's cycle leaves probe:a alone
    assert store.streaks() == {"probe:a": 2, "probe:c": 1}
    store.save_streaks({"probe:a": 0})
    assert store.streaks() == {"probe:c": 1}


def _schema(store: Store) -> dict[str, list[tuple[str, str]]]:
    """Each table's (column, type) in order, and each index's table, on either dialect."""
    with store.transaction() as db:
        if store.dialect == "sqlite":
            names = db.execute(
                "SELECT name, type, tbl_name FROM sqlite_master"
                " WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
            return {
                name: [(c[1], c[2]) for c in db.execute(f'PRAGMA table_info("{name}")')]
                if kind == "table"
                else [("index on", table)]
                for name, kind, table in names
            }
        columns = db.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = db.execute(
            "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'"
        ).fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in columns:
        found.setdefault(table, []).append((column, kind))
    for index, table in indexes:
        found[index] = [("index on", table)]
    return found


def test_a_migrated_old_store_ends_with_the_schema_of_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lazarus import schema
    from lazarus import store as store_module

    # A store of version 1, whose modules created some of their tables on first use.
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", schema.MIGRATIONS[:1])
        old = Store(tmp_path / "old.db")
    incident, _ = old.open_incident(anomaly())
    with old.transaction() as db:
        for statement in schema.statements(schema.MIGRATIONS[1])[:2]:  # watch_cycles, notify_alerts
            db.execute(statement)
        db.execute(
            "INSERT INTO watch_cycles (shard, cycle, holder, started, expires)"
            " VALUES ('1/1', 7, 'h', 1.0, 2.0)"
        )
    old.close()

    migrated, fresh = Store(tmp_path / "old.db"), Store(tmp_path / "fresh.db")
    assert _schema(migrated) == _schema(fresh)
    assert {"watch_cycles", "notify_alerts", "recovery_leases", "detector_series"} <= set(
        _schema(fresh)
    )
    for store in (migrated, fresh):
        with store.transaction() as db:
            assert db.execute("SELECT MAX(version) FROM lazarus_schema").fetchone()[0] == len(
                schema.MIGRATIONS
            )
    assert migrated.get(incident.id).fingerprint == incident.fingerprint  # nothing lost
    with migrated.transaction() as db:
        assert [tuple(r) for r in db.execute("SELECT cycle FROM watch_cycles")] == [(7,)]
    migrated.close()
    fresh.close()
