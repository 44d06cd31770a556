"""Lazarus on a real Prefect server: `prefect server start` (SQLite) + a process worker.

Deploy twice (same deployment ids and one automation), switch auto-remediation off, kill a
sandbox service: the scheduled watch opens the incident and the automation's recover run leaves
it alone; a person's recover runs (dry, then real) resolve it. Switched on, the next incident is
recovered by the automation alone. Everything stopped by process group.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import variant
from tests.e2e.prefect_server import (
    FINAL,
    actions,
    lazarus,
    prefect_server,
    run_deployment,
    wait_incident,
    worker,
)

pytestmark = pytest.mark.e2e
PORT = 4392
API = f"http://127.0.0.1:{PORT}/api"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    with prefect_server(tmp_path, PORT) as env:
        yield env


def _ids(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("deployment-id ")]


def _runs(deployment_id: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    return httpx.post(f"{API}/flow_runs/filter", json=body, timeout=10).json()


def _wait_finished(deployment_id: str, count: int = 1, limit: float = 90) -> list[dict[str, Any]]:
    """The first ``count`` runs of a deployment, once each has reached a final state."""
    for _ in range(int(limit)):
        runs = _runs(deployment_id)[:count]
        if len(runs) == count and all(r["state_type"] in FINAL for r in runs):
            return runs
        time.sleep(1)
    pytest.fail(f"deployment {deployment_id} has no {count} finished runs")


def test_deploy_schedule_automation_and_manual_recover(
    sandbox: Any, server: dict[str, str], tmp_path: Path
):
    config = variant(
        sandbox, "prefect-server", {"state.path": "state/prefect-server.db", "watch.interval": 2}
    )
    db = sandbox.root / "state" / "prefect-server.db"
    first, second = lazarus(server, "deploy", str(config)), lazarus(server, "deploy", str(config))
    assert first.returncode == 0, first.stderr
    ids = _ids(first.stdout)
    assert len(ids) == 5  # watch, recover, acknowledge, backtest, drill
    assert _ids(second.stdout) == ids
    automations = httpx.post(f"{API}/automations/filter", json={}, timeout=10).json()
    assert [a["name"] for a in automations] == ["lazarus: recover each opened incident"]

    assert lazarus(server, "auto-remediation", "off").returncode == 0
    first_host, second_host = sandbox.hosts[1].name, sandbox.hosts[2].name
    sandbox.fault(first_host, "kill")
    try:
        with worker(server, tmp_path):
            assert _wait_finished(ids[0])[0]["state_type"] == "COMPLETED"
            # switched off: the automation's recover run leaves the incident alone
            incident = wait_incident(db, first_host, ("open", "notified"))
            assert _wait_finished(ids[1])[0]["state_type"] == "COMPLETED"
            assert actions(db, incident.id) == []
            # a person runs recover from the deployment: a dry run, then the real one
            run_deployment(server, "recover/recover", incident_id=incident.id, dry_run="true")
            run_deployment(server, "recover/recover", incident_id=incident.id)
            assert all(r["state_type"] == "COMPLETED" for r in _wait_finished(ids[1], count=3))
            assert wait_incident(db, first_host, ("resolved",)).id == incident.id
            assert sandbox.health(first_host) == 200
            # switched on: the next incident is recovered by the automation alone
            assert lazarus(server, "auto-remediation", "on").returncode == 0
            sandbox.fault(second_host, "kill")
            healed = wait_incident(db, second_host, ("resolved", "escalated"), limit=120)
            assert healed.state == "resolved", healed.reason
            assert ("ssh.restart", "automation", True) in actions(db, healed.id)
    finally:
        sandbox.fault(first_host, "heal")
        sandbox.fault(second_host, "heal")
