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
