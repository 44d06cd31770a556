"""Crash-safe recovery: a run that dies mid-way leaves nothing stuck, and no step's exception
leaves a run without an end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Hooks, Playbook, StepContext, run
from lazarus.playbooks.guards import Guards
from lazarus.playbooks.leases import (
    HANDOVER_WAIT,
    UNCLAIMED_WAIT,
    Reconciled,
    RecoveryLease,
    awaits_taker,
    hand_over_unclaimed,
    reconcile,
    take_over,
    unclaimed,
)
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
        lease.at_step("steps/restart", False)
        lease._stop.set()  # the run is killed: nothing renews or releases
        assert reconcile(store) == Reconciled()  # still within its lease
        [stuck] = reconcile(store, now=time.time() + 10, ttl=5).escalated
    assert stuck.state is IncidentState.ESCALATED
    assert "interrupted at step steps/restart" in stuck.reason
    assert "not safe to repeat: a person decides" in stuck.reason
    assert [a.action for a in store.actions(incident_id)] == ["reconcile"]
    assert reconcile(store, now=time.time() + 10, ttl=5) == Reconciled()  # once
    assert store.claim(incident_id) is not None  # a person can start it again


def test_a_run_without_a_lease_counts_from_its_claim(store: Store) -> None:
    incident_id = _remediating(store)
    assert reconcile(store, ttl=60) == Reconciled()
    [stuck] = reconcile(store, now=time.time() + 61, ttl=60).escalated
    assert stuck.id == incident_id and "unknown" in stuck.reason


def test_a_live_run_renews_its_lease_and_releases_it(store: Store) -> None:
    incident_id = _remediating(store)
    with RecoveryLease(store, incident_id, "run-1", ttl=0.3):
        time.sleep(0.5)  # longer than the ttl: only the renewals keep it
        assert reconcile(store, ttl=0.3) == Reconciled()
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


STEPS = {
    "version": 1,
    "name": "slow-restart",
    "trigger": {"matchers": ['symptom="service_down"']},
    "steps": [
        {"id": "restart", "action": "ssh.restart"},
        {"id": "hold", "action": "wait", "with": {"duration": "1s"}},
        {"id": "again", "action": "wait", "with": {"duration": "2s"}},
    ],
}


def _killed_at(
    store: Store, incident_id: int, steps: list[tuple[str, bool]], owner: str = "run-1"
) -> None:
    """A run that went through ``steps`` (block/id, safe to repeat) and died in the last."""
    lease = RecoveryLease(store, incident_id, owner, ttl=5)
    lease.__enter__()
    for step, repeatable in steps:
        lease.at_step(step, repeatable)
    lease._stop.set()


def test_a_run_killed_in_a_step_safe_to_repeat_is_taken_over_once_past_its_finished_steps(
    store: Store,
) -> None:
    incident_id = _remediating(store)
    _killed_at(store, incident_id, [("steps/restart", True), ("steps/hold", True)])
    later = time.time() + 10
    found = reconcile(store, now=later, ttl=5)
    assert [i.id for i in found.handed_over] == [incident_id] and found.escalated == []
    assert store.get(incident_id).state is IncidentState.REMEDIATING  # still being recovered
    assert reconcile(store, now=later, ttl=5) == Reconciled()  # handed over once
    assert awaits_taker(store, incident_id)  # a taker that crashes first is started again
    takers = [take_over(store, incident_id, f"run-{n}", ttl=5) for n in (2, 3)]
    assert takers == [["steps/restart"], None]  # exactly one run takes it, past the restart
    assert not awaits_taker(store, incident_id)

    # the run that takes over skips what the dead one finished and runs the rest once
    book = Playbook.model_validate(STEPS)
    incident = store.get(incident_id)
    slept: list[float] = []
    result = run(book, StepContext(incident, sleep=slept.append), Hooks(skip=frozenset(takers[0])))
    assert result.status == "resolved"
    assert [(s.id, s.attempts) for s in result.steps] == [("restart", 0), ("hold", 1), ("again", 1)]
    assert slept == [1.0, 2.0]  # the interrupted step ran again, then the next


def test_a_run_taken_over_that_dies_again_goes_to_a_person(store: Store) -> None:
    incident_id = _remediating(store)
    _killed_at(store, incident_id, [("steps/hold", True)])
    assert reconcile(store, now=time.time() + 10, ttl=5).handed_over
    assert reconcile(store, now=time.time() + 20, ttl=5) == Reconciled()  # still waiting
    late = time.time() + 11 + HANDOVER_WAIT * 5
    assert reconcile(store, now=late, ttl=5, spare=incident_id) == Reconciled()  # its taker's
    # nobody takes the handed-over lease in time
    [stuck] = reconcile(store, now=time.time() + 11 + HANDOVER_WAIT * 5, ttl=5).escalated
    assert (
        "interrupted at step steps/hold" in stuck.reason and "no run took it over" in stuck.reason
    )

    again = _remediating(store, "web-2")
    _killed_at(store, again, [("steps/hold", True)])
    assert reconcile(store, now=time.time() + 10, ttl=5).handed_over
    assert take_over(store, again, "run-2", ttl=5) == []
    lease = RecoveryLease(store, again, "run-2", ttl=5, resumed=True)
    lease.__enter__()
    lease.at_step("steps/hold", True)
    lease._stop.set()  # the run that took over dies too
    [stuck] = reconcile(store, now=time.time() + 20, ttl=5).escalated
    assert stuck.id == again and "taken over once already" in stuck.reason


def test_an_incident_nobody_claimed_is_handed_over_once_after_a_bound(tmp_path: Path) -> None:
    """The automation's recover run died before its claim: nothing else says so. The watch
    hands it over once the bound passed, once only, whichever of two watches (two stores on
    one file: two processes) asks first; claimed or fresh incidents are left alone."""
    first, second = Store(tmp_path / "l.db"), Store(tmp_path / "l.db")
    try:
        lost, _ = first.open_incident(anomaly("web-1"))
        claimed = _remediating(first, "web-2")
        bound = UNCLAIMED_WAIT * 5
        soon = lost.detected_at + bound - 1  # its run may still be starting
        assert unclaimed(first, ttl=5, now=soon) == []
        later = lost.detected_at + bound + 1
        waiting = unclaimed(first, ttl=5, now=later)
        assert [i.id for i in waiting] == [lost.id]  # the claimed one is a lease's business
        assert [i.id for i in hand_over_unclaimed(first, waiting)] == [lost.id]
        assert hand_over_unclaimed(second, unclaimed(second, ttl=5, now=later)) == []
        assert hand_over_unclaimed(first, waiting) == []
        [record] = first.actions(lost.id)
        assert (record.action, record.target) == ("reconcile", "(before the first step)@web-1")
        assert first.claim(lost.id) is not None  # the run it starts claims as any run does
        assert unclaimed(first, ttl=5, now=later) == []
        assert first.get(claimed).state is IncidentState.REMEDIATING
    finally:
        first.close()
        second.close()


def test_a_lease_whose_process_on_this_machine_is_gone_lapses_at_once(store: Store) -> None:
    """`lazarus serve` killed and started again: its recoveries are taken over at its first
    cycle, not a lease period later; a live process's lease (this one's) is waited for."""
    import subprocess
    import sys

    from lazarus.cycles import holder_id

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    machine = holder_id().rsplit(":", 2)[0]
    dead, alive = _remediating(store, "web-1"), _remediating(store, "web-2")
    run = "http://127.0.0.1:4200/runs/flow-run/1"  # what a person follows
    _killed_at(store, dead, [("steps/hold", True)], owner=f"{machine}:{child.pid}:abcdef {run}")
    _killed_at(store, alive, [("steps/hold", True)], owner=holder_id())
    assert [i.id for i in reconcile(store, ttl=5).handed_over] == [dead]
