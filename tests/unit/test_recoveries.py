"""The watch's recover runs beside its loop: outcomes collected later, a crash before the claim
started again at once, every crash logged with its incident."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import flows.watch as watch


def test_runs_go_on_beside_the_caller_and_a_crash_before_acting_is_started_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each crash is one more burst of 503s from the local Prefect server's SQLite: the run is
    started again at the next collection, not left to the 2-minute unclaimed hand-over (seen
    in CI: one retry, crashed again, and the incident waited out two lease periods)."""
    release = threading.Event()
    tries: dict[int, int] = {}

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        tries[incident_id] = tries.get(incident_id, 0) + 1
        release.wait(10)
        if incident_id == 3 or (incident_id == 2 and tries[2] <= 2):
            raise RuntimeError("503 Service Unavailable")  # the server, under load
        return "resolved"

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    monkeypatch.setattr(watch, "_unclaimed", lambda config_path, incident_id: True)
    recoveries = watch.Recoveries()
    recoveries.start([1, 2, 3], "lazarus.yaml", timeout=60.0)
    assert recoveries.running == 3 and recoveries.ended() == []  # the caller did not wait
    release.set()
    with caplog.at_level(logging.WARNING, logger=watch.__name__):
        assert sorted(recoveries.close()) == ["crashed", "resolved", "resolved"]
    assert tries == {1: 1, 2: 3, 3: 1 + watch.RESTARTS}  # bounded: a person's after that
    crashes = [r.getMessage() for r in caplog.records if r.exc_info]
    assert crashes.count("the recover run of incident #2 crashed") == 2
    assert crashes.count("the recover run of incident #3 crashed") == 1 + watch.RESTARTS


def test_a_run_that_crashed_after_its_claim_is_not_started_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries: list[int] = []

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        tries.append(incident_id)
        raise RuntimeError("503 Service Unavailable")

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    monkeypatch.setattr(watch, "_unclaimed", lambda config_path, incident_id: False)
    recoveries = watch.Recoveries()
    recoveries.start([4], "lazarus.yaml", timeout=60.0)
    assert recoveries.close() == ["crashed"]
    assert tries == [4]


def test_a_run_cancelled_on_its_thread_is_logged_with_its_incident_not_raised_in_the_cycle(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``CancelledError`` is a ``BaseException``: collected, it broke out of the cycle."""

    def fake_recover(incident_id: int, config_path: str, **options: object) -> str:
        raise asyncio.CancelledError()

    monkeypatch.setattr(watch, "run_recover", fake_recover)
    monkeypatch.setattr(watch, "_unclaimed", lambda config_path, incident_id: False)
    recoveries = watch.Recoveries()
    recoveries.start([5], "lazarus.yaml", timeout=60.0)
    with caplog.at_level(logging.ERROR, logger=watch.__name__):
        assert recoveries.close() == ["crashed"]
    assert "the recover run of incident #5 crashed" in caplog.text


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
