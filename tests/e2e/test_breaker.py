"""The circuit breaker on real parts. A flapping service, from the running watch loop: the
service crashes soon after every start (`lazarus sandbox fault HOST flap`); the shipped
service-down playbook's breaker (`per_target: {max: 3, within: 1h}`) allows 3 restarts,
retries included, then the watch escalates once, with the reason, and leaves the service
alone until a person closes it. And the refused recover run tells the truth in the UI."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

HOST, TARGET = "web-1", "web@web-1"


def test_flapping_service_gets_three_restarts_then_exactly_one_escalation(
    healthy_sandbox: Any,
) -> None:
    from flows.loop import watch_until
    from flows.recover import run_recover
    from lazarus.model import IncidentState
    from lazarus.playbooks import Guards
    from lazarus.store import Store

    sb = healthy_sandbox
    config = variant(sb, "flapping", {"state.path": "state/flapping.db"})
    store = Store(sb.root / "state" / "flapping.db")
    others = {h.name: sb.service_pid(h.name) for h in sb.hosts if h.name != HOST}
    mails_before = len(sb.mail())

    def incidents() -> list[Any]:
        return [i for i in store.recent(100) if i.host == HOST]

    def escalated() -> list[Any]:
        return [i for i in incidents() if i.state is IncidentState.ESCALATED]

    try:
        watch_until(str(config), interval=1.0, until=lambda r: len(r.cycles) >= 1)
        sb.fault(HOST, "flap")
        watch_until(
            str(config), interval=1.0, until=lambda r: bool(escalated()) or len(r.cycles) >= 150
        )
        # the watch goes on; the breaker stays open, nothing more is restarted or paged
        watch_until(str(config), interval=1.0, until=lambda r: len(r.cycles) >= 8)

        (page,) = escalated()
        assert (page.fingerprint, page.symptom) == (f"{TARGET}/service_down", "service_down")
        restarts = [
            a for i in incidents() for a in store.actions(i.id) if a.action == "ssh.restart"
        ]
        said = [(a.incident_id, a.ok, a.detail) for a in restarts]
        if "breaker open" in page.reason:  # the usual way: each restart healed it for a while
            assert f"breaker open for service-down on {TARGET}: 3 restarts" in page.reason
            assert store.actions(page.id) == []  # the guard said no before anything ran
            assert len(restarts) == 3, said
        else:  # a slow machine: it died again before verify, which escalates at once
            assert "the symptom is still there" in page.reason, page.reason
            assert 1 <= len(restarts) <= 3, said
        assert [i.state for i in incidents()].count(IncidentState.ESCALATED) == 1
        assert sb.health(HOST) != 200  # independently: still down, nobody touched it since
        mails = sb.mail()[mails_before:]
        pages = [m for m in mails if "escalated" in str(m) and TARGET in str(m)]
        assert len(pages) == 1, [m.get("subject") for m in mails]
        assert {h: sb.service_pid(h) for h in others} == others

        # a person mends the cause, closes the breaker, and recovers the incident by hand
        sb.fault(HOST, "clear")
        assert Guards(store).reset_breaker(TARGET, "service-down") == len(restarts)
        assert run_recover(page.id, str(config), actor="ana") == "resolved"
        assert sb.health(HOST) == 200
    finally:
        store.close()


def test_breaker_run_ends_failed_with_the_reason_and_a_person_closes_it(
    healthy_sandbox: Any,
) -> None:
    from prefect import get_client

    from flows.recover import recover, run_recover
    from lazarus.model import Anomaly
    from lazarus.playbooks import Guards
    from lazarus.store import Store

    services = yaml.safe_load(healthy_sandbox.config_path.read_text())["inventory"]["services"]
    restart = {"kind": "command", "restart": "true"}  # the service stays up: it only flaps
    config = variant(healthy_sandbox, "flap", {
        "state.path": "state/flap.db",
        "inventory.services": [{**s, "control": restart} for s in services],
    })  # fmt: skip
    store = Store(healthy_sandbox.root / "state" / "flap.db")

    def flap() -> str:
        anomaly = Anomaly("web-1", "web", "service_down", "critical", "down", time.time())
        incident, created = store.open_incident(anomaly)
        assert created, incident  # the one before ended
        return run_recover(incident.id, str(config), actor="automation")

    try:
        assert [flap() for _ in range(3)] == ["resolved"] * 3
        anomaly = Anomaly("web-1", "web", "service_down", "critical", "down", time.time())
        incident, _ = store.open_incident(anomaly)
        state = recover(incident.id, str(config), actor="automation", return_state=True)
        # the run tells the truth: Failed with the reason, named and tagged for its incident
        assert state.is_failed() and "breaker open" in state.message, state
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(state.state_details.flow_run_id)
        assert run.name == f"recover #{incident.id} service_down web@web-1"
        assert {f"incident:{incident.id}", "symptom:service_down", "host:web-1"} <= set(run.tags)
        escalated = store.recent(1)[0]
        assert "breaker open for service-down on web@web-1: 3 restarts" in escalated.reason
        assert store.actions(escalated.id) == []  # nothing ran
        # a person closes the breaker (lazarus playbook reset-breaker) and runs recover again
        assert Guards(store).reset_breaker("web@web-1", "service-down") == 3
        assert run_recover(escalated.id, str(config), actor="ana") == "resolved"
    finally:
        store.close()
