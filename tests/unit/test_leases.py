"""Crash-safe recovery: a run that dies mid-way leaves nothing stuck, and no step's exception
leaves a run without an end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Playbook, StepContext, run
from lazarus.playbooks.guards import Guards
from lazarus.playbooks.leases import RecoveryLease, reconcile
from lazarus.store import Store
from tests.unit.test_store import anomaly


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "l.db")
    yield s
    s.close()


def _remediating(store: Store, host: str = "web-1") -> int:
    incident, _ = store.open_incident(anomaly(host))
    assert store.claim(incident.id) is not None
    return incident.id


def test_an_expired_lease_escalates_with_the_step_and_frees_the_fleet_slot(store: Store) -> None:
    incident_id = _remediating(store)
    guards = Guards(store)
    with guards.fleet_lease("web", "web-1", cap=1):
        lease = RecoveryLease(store, incident_id, "run-1", ttl=5)
        lease.__enter__()
        lease.at_step("steps/restart")
        lease._stop.set()  # the run is killed: nothing renews or releases
        assert reconcile(store) == []  # still within its lease
        [stuck] = reconcile(store, now=time.time() + 10, ttl=5)
    assert stuck.state is IncidentState.ESCALATED
    assert "interrupted at step steps/restart" in stuck.reason
    assert [a.action for a in store.actions(incident_id)] == ["reconcile"]
    assert reconcile(store, now=time.time() + 10, ttl=5) == []  # once
    assert store.claim(incident_id) is not None  # a person can start it again


def test_a_run_without_a_lease_counts_from_its_claim(store: Store) -> None:
    incident_id = _remediating(store)
    assert reconcile(store, ttl=60) == []
    [stuck] = reconcile(store, now=time.time() + 61, ttl=60)
    assert stuck.id == incident_id and "unknown" in stuck.reason


def test_a_live_run_renews_its_lease_and_releases_it(store: Store) -> None:
    incident_id = _remediating(store)
    with RecoveryLease(store, incident_id, "run-1", ttl=0.3):
        time.sleep(0.5)  # longer than the ttl: only the renewals keep it
        assert reconcile(store, ttl=0.3) == []
    assert store.get(incident_id).state is IncidentState.REMEDIATING


def _sleep_breaks(seconds: float) -> None:
    raise OverflowError("cannot sleep that long")  # what wait: .inf did before check refused it


def test_any_exception_in_a_step_fails_that_step() -> None:
    book = Playbook.model_validate(
        {
            "version": 1,
            "name": "t",
            "trigger": {"matchers": ['a="b"']},
            "steps": [{"id": "w", "action": "wait", "with": {"duration": "1s"}}],
        }
    )
    incident = Incident(1, "f", "web-1", "web", "x", "critical", IncidentState.OPEN, "", {}, 0.0)
    result = run(book, StepContext(incident, sleep=_sleep_breaks))
    assert result.status == "failed"
    assert "unexpected OverflowError: cannot sleep that long" in result.error
    assert [(s.id, s.ok) for s in result.steps] == [("w", False)]
