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


def start(pid: int, at: float, host: str = "web-1") -> Seen:
    return Seen(host, "api", "start", "unit", f"{pid}:{int(at) * 100}", at)


def test_a_start_nobody_in_lazarus_made_is_a_change_and_lazarus_own_doing_is_not(
    tmp_path: Path,
) -> None:
    from lazarus.model import IncidentState

    store = Store(tmp_path / "s.db")
    assert changes.record(store, [start(10, 100.0)], now=1000.0) == []  # the baseline
    (change,) = changes.record(store, [start(11, 1005.0)], now=1010.0)  # someone restarted it
    assert (change.kind, change.at, change.host) == ("restart", 1005.0, "web-1")
    assert "by someone other than Lazarus (pid 10 -> 11)" in change.description
    # Lazarus claims an incident on the host at 1100 and restarts the unit at 1101
    incident, _ = store.open_incident(
        Anomaly("web-1", "api", "service_down", "critical", "refused", 1090.0)
    )
    store.transition(incident.id, IncidentState.REMEDIATING, at=1100.0)
    assert changes.record(store, [start(12, 1101.0)], now=1103.0) == []
    changes.record(store, [release("v1", 900.0)], now=1099.0)
    assert changes.record(store, [release("v0", 1102.0)], now=1103.0) == []  # its rollback
    store.transition(incident.id, IncidentState.RESOLVED, at=1104.0)
    # after the remediation ended, a start is someone else's again; on another host too
    assert [c.kind for c in changes.record(store, [start(13, 1200.0)], now=1201.0)] == ["restart"]
    assert changes.record(store, [start(5, 1102.0, host="web-2")], now=1103.0) == []  # baseline
    assert changes.since(store, 1000.0) == [change, *changes.since(store, 1200.0)]
    store.close()


def test_the_unit_pid_is_asked_of_its_own_service_manager() -> None:
    from lazarus.config import Control, Host, Probe, Service

    host = Host(name="web-1", address="10.0.0.1")
    probe = Probe(http="http://{address}/health")
    for control, argv in [
        (Control(kind="supervisor", config="/etc/{host}.conf", unit="api-1"),
         ["supervisorctl", "-c", "/etc/web-1.conf", "pid", "api-1"]),
        (Control(kind="systemd"), ["systemctl", "show", "-p", "MainPID", "--value", "api"]),
        (Control(kind="docker"),
         ["docker", "container", "inspect", "--format", "{{.State.Pid}}", "api"]),
        (Control(kind="command", restart="/usr/local/bin/restart {service}"), []),
    ]:  # fmt: skip
        service = Service(name="api", probe=probe, control=control)
        assert changes.pid_argv(service, host) == argv
