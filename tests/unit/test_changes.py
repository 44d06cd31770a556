"""Changes the watch saw, and what the recover flow's diagnosis reads back from the store."""

from __future__ import annotations

from pathlib import Path

from lazarus import changes
from lazarus.changes import Seen
from lazarus.diagnose.inputs import KEEP_LINES, diagnosis_inputs, remember_lines
from lazarus.logcollect.cycle import FileLines, LogBatch
from lazarus.model import Anomaly
from lazarus.store import Store


def release(value: str, mtime: float, host: str = "web-1") -> Seen:
    return Seen(host, "api", "release", "current", value, mtime)


def test_first_sight_is_the_baseline_and_a_new_target_is_a_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert changes.record(store, [release("v1", 100.0)], now=1000.0) == []
    assert changes.record(store, [release("v1", 100.0)], now=1010.0) == []
    (change,) = changes.record(store, [release("v2", 1005.0)], now=1020.0)
    assert (change.at, change.kind, change.host, change.service) == (
        1005.0,
        "release",
        "web-1",
        "api",
    )
    assert "v1 -> v2" in change.description
    assert changes.since(store, 1000.0) == [change] and changes.since(store, 1006.0) == []
    store.close()


def test_recover_reads_the_lines_and_changes_of_its_incident(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    changes.record(store, [release("v1", 100.0)], now=900.0)
    changes.record(store, [release("v2", 950.0)], now=960.0)
    noisy = [f"line {i}" for i in range(KEEP_LINES + 20)]
    remember_lines(store, LogBatch(990.0, [
        FileLines("web-1", "api", "/log", "<Content>", noisy),
        FileLines("web-1", "db", "/log", "<Content>", ["not mine"]),
    ]))  # fmt: skip
    incident, _ = store.open_incident(
        Anomaly("web-1", "api", "service_unhealthy", "critical", "500", 1000.0)
    )
    lines, seen = diagnosis_inputs(store, incident)
    assert len(lines) == KEEP_LINES and lines[-1].line == noisy[-1]
    assert {line.service for line in lines} == {"api"}
    assert [c.description for c in seen] == ["api@web-1: current v1 -> v2"]
    store.close()
