"""A flapping service: the circuit breaker lets three recoveries run within its window, then
stops acting and escalates with the reason, until a person closes it. Real recover flows over
real SSH on the sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]


def test_breaker_opens_after_three_runs_and_a_person_closes_it(healthy_sandbox: Any) -> None:
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
        assert "breaker open for service-down on web@web-1: 3 runs" in escalated.reason
        assert store.actions(escalated.id) == []  # nothing ran
        # a person closes the breaker (lazarus playbook reset-breaker) and runs recover again
        assert Guards(store).reset_breaker("web@web-1", "service-down") == 3
        assert run_recover(escalated.id, str(config), actor="ana") == "resolved"
    finally:
        store.close()
