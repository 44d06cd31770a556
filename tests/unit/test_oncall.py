"""The on-call's view of an incident from the store: timeline, ack, approval, board, report."""

from __future__ import annotations

from pathlib import Path

from lazarus.model import Anomaly, IncidentState
from lazarus.oncall import (
    ACK,
    APPROVE,
    age,
    board_rows,
    details,
    record_step,
    report_markdown,
    timeline,
)
from lazarus.store import Store


def test_timeline_board_and_report_tell_who_did_what(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        incident, _ = store.open_incident(
            Anomaly("web-2", "web", "service_down", "critical", "3 probes failed", 1000.0)
        )
        store.record_delivery(incident.id, "opened", "oncall", True)
        record_step(store, incident, ACK, "ana", "on it")
        store.set_flow_run_url(incident.id, "http://ui/runs/flow-run/1")
        record_step(store, incident, APPROVE, "bob", "roll it back")
        store.record_action(incident.id, "ssh.restart", "restart@web-2", "bob", True, "exit 0")
        incident = store.get(incident.id)
        [row] = board_rows(store, incident.detected_at + 125)
        assert row["incident"] == f"#{incident.id}" and row["age"] == "2m 5s"
        assert row["acked by"] == "ana (on it)" and row["approved by"] == "bob (roll it back)"
        assert row["recover run"] == "[run](http://ui/runs/flow-run/1)"
        store.transition(incident.id, IncidentState.REMEDIATING)
        done = store.transition(incident.id, IncidentState.RESOLVED, reason="verified")
        whats = [e.what for e in timeline(store, done)]
        assert whats[0] == "detected" and whats[-1] == "resolved"
        assert {
            "notified opened",
            "acknowledged",
            "approved",
            "ssh.restart on restart@web-2",
        } <= set(whats)
        report = report_markdown(store, done, done.closed_at or 0)
        assert f"# Incident #{done.id}: service_down on web@web-2" in report
        assert "- acknowledged by: ana (on it)" in report
        assert "| acknowledged | ana | ok: on it |" in report
        assert details(store, done, 0)["time_to_recover"] is not None
        assert board_rows(store, 0) == []  # resolved: off the board
    finally:
        store.close()


def test_age_reads_like_a_person_would_say_it() -> None:
    assert [age(None), age(45), age(725), age(3 * 3600 + 120)] == ["-", "45s", "12m 5s", "3h 2m"]
