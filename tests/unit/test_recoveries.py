"""The watch's recover runs beside its loop: outcomes collected later, a crash retried once."""

from __future__ import annotations

import threading

import pytest

import flows.watch as watch


def test_runs_go_on_beside_the_caller_and_a_crash_before_acting_is_tried_once_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    tries: dict[int, int] = {}

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        tries[incident_id] = tries.get(incident_id, 0) + 1
        release.wait(10)
        if incident_id == 2:
            raise RuntimeError("503 Service Unavailable")  # the server, under load
        return "resolved"

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    monkeypatch.setattr(watch, "_unclaimed", lambda config_path, incident_id: True)
    recoveries = watch.Recoveries()
    recoveries.start([1, 2], "lazarus.yaml", timeout=60.0)
    assert recoveries.running == 2 and recoveries.ended() == []  # the caller did not wait
    release.set()
    assert sorted(recoveries.close()) == ["crashed", "resolved"]
    assert tries == {1: 1, 2: 2}


def test_runs_start_one_after_another_each_once_the_one_before_claimed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started together, runs met on the Prefect server's SQLite (503, retried seconds later)."""
    from flows.recover import claimed_hook

    events: list[str] = []
    claim = {1: threading.Event(), 2: threading.Event()}
    second = threading.Event()

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        events.append(f"start {incident_id}")
        second.set() if incident_id == 2 else None
        claim[incident_id].wait(10)
        events.append(f"claimed {incident_id}")
        claimed_hook.get()()
        return "resolved"

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    recoveries = watch.Recoveries()
    recoveries.start([1, 2], "lazarus.yaml", timeout=60.0)
    assert not second.wait(0.5)  # the second waits for the first's claim
    assert events == ["start 1"]
    claim[1].set()
    assert second.wait(10)
    claim[2].set()
    assert recoveries.close() == ["resolved", "resolved"]
    assert events == ["start 1", "claimed 1", "start 2", "claimed 2"]


def test_a_stop_gives_the_runs_a_grace_then_leaves_them_to_the_next_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C on `lazarus serve` held the process until every run's bound (10 min by default)."""
    release, quick = threading.Event(), threading.Event()

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        (quick if incident_id == 2 else release).wait(10)
        return "resolved"

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    recoveries = watch.Recoveries()
    recoveries.start([1], "lazarus.yaml", timeout=60.0)
    assert recoveries.stop(grace=0.2) == [1]  # still going after its grace
    (thread,) = [t for t in threading.enumerate() if t.name == "lazarus-recover-1"]
    assert thread.daemon  # the process may end without it; its lease tells the next start
    release.set()
    assert recoveries.close() == ["resolved"]

    recoveries.start([2], "lazarus.yaml", timeout=60.0)
    threading.Timer(0.1, quick.set).start()
    assert recoveries.stop(grace=10) == []  # it ended within the grace
