"""Lazarus on a real Prefect server: `prefect server start` (SQLite) + a process worker.

Deploy twice (same deployment ids, the same two automations), switch auto-remediation off, kill a
sandbox service: the scheduled watch opens the incident and the automation's recover run leaves
it alone; a person's recover runs (dry, then real) resolve it. Switched on, the next incident is
recovered by the automation alone. Its watch deployment paused (once that incident opened), the
dead-man's automation runs the deadman deployment, which pages. Everything stopped by process group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lazarus.sandbox.sinks import free_port
from tests.e2e.conftest import variant
from tests.e2e.prefect_server import (
    actions,
    api,
    completed,
    lazarus,
    prefect_server,
    run_deployment,
    runs,
    wait_for,
    wait_incident,
    worker,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    with prefect_server(tmp_path, free_port()) as env:  # two test sessions at once never clash
        yield env


def _ids(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("deployment-id ")]


def test_deploy_schedule_automation_and_manual_recover(
    healthy_sandbox: Any, server: dict[str, str], tmp_path: Path
):
    sandbox = healthy_sandbox  # every fault it makes is cleared again afterwards
    config = variant(
        sandbox,
        "prefect-server",
        {
            "state.path": "state/prefect-server.db",
            "watch.interval": 2,
            "watch.dead_after": 5,
            "watch.startup": "8s",  # the test's worker polls every second
        },
    )
    db = sandbox.root / "state" / "prefect-server.db"
    first = lazarus(server, "deploy", "-c", str(config))
    second = lazarus(server, "deploy", "-c", str(config))
    for run in (first, second):  # Prefect's note about process pools: once, not per deployment
        assert (run.stdout + run.stderr).count("Looks like you") <= 1
    assert first.returncode == 0, first.stderr
    ids = _ids(first.stdout)
    assert len(ids) == 6  # watch, recover, acknowledge, backtest, deadman, drill
    assert _ids(second.stdout) == ids
    automations = api(server, "automations/filter", {})
    assert sorted(a["name"] for a in automations) == [  # each once, however often deployed
        "lazarus: crash runs whose worker died",
        "lazarus: page when the watch stops",
        "lazarus: recover each opened incident",
    ]

    assert lazarus(server, "auto-remediation", "off").returncode == 0
    first_host, second_host = sandbox.hosts[1].name, sandbox.hosts[2].name
    sandbox.fault(first_host, "kill")
    with worker(server, tmp_path):
        completed(server, ids[0])  # the schedule fired and a watch cycle ran
        # switched off: the automation's recover run leaves the incident alone
        incident = wait_incident(db, first_host, ("open", "notified"))
        completed(server, ids[1])
        assert actions(db, incident.id) == []
        # a person runs recover from the deployment: a dry run, then the real one
        run_deployment(server, "recover/recover", incident_id=incident.id, dry_run="true")
        run_deployment(server, "recover/recover", incident_id=incident.id)
        completed(server, ids[1], count=3)
        assert wait_incident(db, first_host, ("resolved",)).id == incident.id
        assert sandbox.health(first_host) == 200
        # switched on: the next incident is recovered by the automation alone
        assert lazarus(server, "auto-remediation", "on").returncode == 0
        sandbox.fault(second_host, "kill")
        opened = ("open", "notified", "remediating", "resolved", "escalated")
        wait_incident(db, second_host, opened, limit=120)
        # the dead-man's switch: watch runs stop completing -> one deadman run pages; the
        # watch is paused now, so its silence runs out while the automation's recover run goes on
        before = len([r for r in runs(server, ids[4]) if r["state_type"] == "COMPLETED"])
        paused = f"{server['PREFECT_API_URL']}/deployments/{ids[0]}/pause_deployment"
        assert httpx.post(paused, timeout=10).status_code < 300
        healed = wait_incident(db, second_host, ("resolved", "escalated"), limit=120)
        assert healed.state == "resolved", healed.reason
        assert ("ssh.restart", "automation", True) in actions(db, healed.id)
        completed(server, ids[4], count=before + 1)
        wait_for(
            "the dead-man's page",
            lambda: [m for m in sandbox.mail() if "Lazarus is not watching" in m["subject"]],
        )
