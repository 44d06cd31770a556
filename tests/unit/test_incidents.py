"""Incidents without a probe resolve when no detector has reported them for a while."""

from __future__ import annotations

from pathlib import Path

from lazarus.incidents import close_quiet, open_incidents
from lazarus.model import Anomaly, IncidentState
from lazarus.store import Store

T0 = 1_800_000_000.0


def anomaly(symptom: str, at: float, host: str = "web-1") -> Anomaly:
    return Anomaly(host, "api", symptom, "warning", f"{symptom} on {host}", at)


def test_quiet_incidents_resolve_and_probe_or_busy_ones_stay(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    disk, log, down, busy = open_incidents(store, [
        anomaly("disk_used_ratio_out_of_bounds", T0), anomaly("log_new_error", T0),
        anomaly("service_down", T0), anomaly("latency_anomaly", T0, host="web-2"),
    ])  # fmt: skip
    store.claim(busy.id)  # a recovery is acting on it: it decides, not the quiet rule
    open_incidents(store, [anomaly("disk_used_ratio_out_of_bounds", T0 + 500)])  # still firing
    assert close_quiet(store, T0 + 599, after=600) == []
    closed = close_quiet(store, T0 + 700, after=600)
    assert [i.id for i in closed] == [log.id]
    assert "not reported for 600s" in closed[0].reason
    assert [i.id for i in close_quiet(store, T0 + 1100, after=600)] == [disk.id]
    states = {i.id: i.state for i in store.recent()}
    assert states[down.id] is IncidentState.OPEN and states[busy.id] is IncidentState.REMEDIATING
    store.close()


def test_host_down_resolves_when_the_host_answers_and_mutes_remediation_of_its_services(
    tmp_path: Path,
) -> None:
    from lazarus.config import Config
    from lazarus.incidents import close_cleared, hosts_down, remediable
    from lazarus.model import Observation
    from lazarus.playbooks import load_dir

    store = Store(tmp_path / "s.db")
    host = Anomaly("web-2", "", "host_down", "critical", "unreachable", T0, {"host": "web-2"})
    service = open_incidents(store, [anomaly("service_down", T0, "web-2"), host])[0]
    assert hosts_down(store) == {"web-2"}
    config = Config.model_validate(
        {"inventory": {"ssh": {"key": "k"}, "hosts": [{"name": "web-2", "address": "10.0.0.2"}]}}
    )
    books = load_dir(Path(__file__).parents[2] / "playbooks")
    assert not remediable(config, books, service, hosts_down(store))  # nobody can reach it
    down = [Observation("web-2", "api", False, "unreachable: no answer", T0)]
    assert close_cleared(store, down) == []
    closed = close_cleared(store, [], answered=["web-2"])  # SSH answers again
    assert [(i.symptom, i.reason) for i in closed] == [
        ("host_down", "symptom cleared: the host answers again")
    ]
    store.close()


def test_what_a_cycle_saw_before_a_recovery_resolved_the_fault_opens_nothing(
    tmp_path: Path,
) -> None:
    """Recoveries run beside the loop: a cycle may probe a service before its restart and
    correlate after the recovery resolved it. That stale verdict is not a new fault."""
    store = Store(tmp_path / "s.db")
    (hung,) = open_incidents(store, [anomaly("service_unhealthy", T0)])
    store.claim(hung.id)
    store.transition(hung.id, IncidentState.RESOLVED, at=T0 + 15)
    assert open_incidents(store, [anomaly("service_unhealthy", T0 + 10)]) == []  # probed at +10
    assert open_incidents(store, [anomaly("service_down", T0 + 12)]) == []  # the same instance
    assert open_incidents(store, [anomaly("disk_full", T0 + 10)]) != []  # another fault
    (again,) = open_incidents(store, [anomaly("service_unhealthy", T0 + 20)])  # after: a new one
    assert again.id != hung.id
    store.close()


def test_the_recovery_of_what_others_depend_on_starts_first(tmp_path: Path) -> None:
    """A stopped dependency opens its own incident and one per dependant in the same cycle:
    the dependants' playbooks wait for it, so its run is started before theirs."""
    from lazarus.config import Config
    from lazarus.incidents import dependencies_first

    probe = {"http": "http://{address}:8080/health"}
    config = Config.model_validate({"inventory": {
        "ssh": {"key": "k"}, "hosts": [{"name": "web-1", "address": "10.0.0.1"}],
        "services": [{"name": "api", "depends_on": ["cache"], "probe": probe},
                     {"name": "cache", "probe": probe}],
    }})  # fmt: skip
    store = Store(tmp_path / "s.db")
    cache = Anomaly("web-1", "cache", "service_down", "critical", "refused", T0)
    api, dep = open_incidents(store, [anomaly("service_down", T0), cache])
    assert [i.service for i in dependencies_first(config, [api, dep])] == ["cache", "api"]
    assert [i.service for i in dependencies_first(config, [dep, api])] == ["cache", "api"]
    store.close()
