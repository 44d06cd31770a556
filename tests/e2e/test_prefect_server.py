"""Lazarus on a real Prefect server: `prefect server start` (SQLite) + a process worker.

Deploy twice (same deployment ids), switch auto-remediation off, kill a sandbox service, let the
watch schedule fire and open the incident, then run the recover deployment by hand (dry run);
both flow runs must reach Completed. Everything stopped by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import variant

pytestmark = pytest.mark.e2e
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
PORT = 4392
API = f"http://127.0.0.1:{PORT}/api"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, wait, then SIGKILL it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PREFECT_API_URL": API,
    }
    log = (tmp_path / "server.log").open("w")
    cmd = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(PORT)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{API}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not become healthy")
        yield env
    finally:
        _stop(proc)
        log.close()


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


def _store(sandbox: Any):
    from lazarus.store import Store

    return Store(sandbox.root / "state" / "prefect-server.db")


def _wait_incident(sandbox: Any, host: str, states: tuple[str, ...], limit: int = 90):
    """The newest incident on ``host`` once it is in one of ``states``."""
    for _ in range(limit):
        if (sandbox.root / "state" / "prefect-server.db").exists():
            store = _store(sandbox)
            try:
                found = [i for i in store.recent() if i.host == host]
            finally:
                store.close()
            if found and found[0].state in states:
                return found[0]
        time.sleep(1)
    pytest.fail(f"no incident on {host} reached {states}")


def _lazarus(server: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["lazarus", *argv], env=server, capture_output=True, text=True, timeout=120
    )


def _run_deployment(server: dict[str, str], name: str, **params: object) -> None:
    run = ["prefect", "deployment", "run", name]
    for key, value in params.items():
        run += ["-p", f"{key}={value}"]
    started = subprocess.run(run, env=server, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr


def test_deploy_schedule_automation_and_manual_recover(
    sandbox: Any, server: dict[str, str], tmp_path: Path
):
    config = variant(
        sandbox, "prefect-server", {"state.path": "state/prefect-server.db", "watch.interval": 2}
    )
    first, second = _lazarus(server, "deploy", str(config)), _lazarus(server, "deploy", str(config))
    assert first.returncode == 0, first.stderr
    ids = _ids(first.stdout)
    assert len(ids) == 3  # watch, recover, acknowledge
    assert _ids(second.stdout) == ids
    automations = httpx.post(f"{API}/automations/filter", json={}, timeout=10).json()
    assert [a["name"] for a in automations] == ["lazarus: recover each opened incident"]

    assert _lazarus(server, "auto-remediation", "off").returncode == 0
    first_host, second_host = sandbox.hosts[1].name, sandbox.hosts[2].name
    sandbox.fault(first_host, "kill")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", "lazarus", "--type", "process"],
        env={**server, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        assert _wait_finished(ids[0])[0]["state_type"] == "COMPLETED"
        # switched off: the automation's recover run leaves the incident alone
        incident = _wait_incident(sandbox, first_host, ("open", "notified"))
        assert _wait_finished(ids[1])[0]["state_type"] == "COMPLETED"
        assert _actions(sandbox, incident.id) == []
        # a person runs recover from the deployment: a dry run, then the real one
        _run_deployment(server, "recover/recover", incident_id=incident.id, dry_run="true")
        _run_deployment(server, "recover/recover", incident_id=incident.id)
        assert all(r["state_type"] == "COMPLETED" for r in _wait_finished(ids[1], count=3))
        assert _wait_incident(sandbox, first_host, ("resolved",)).id == incident.id
        assert sandbox.health(first_host) == 200
        # switched on: the next incident is recovered by the automation alone
        assert _lazarus(server, "auto-remediation", "on").returncode == 0
        sandbox.fault(second_host, "kill")
        healed = _wait_incident(sandbox, second_host, ("resolved", "escalated"), limit=120)
        assert healed.state == "resolved", healed.reason
        assert ("ssh.restart", "automation") in [
            (a.action, a.actor) for a in _actions(sandbox, healed.id)
        ]
    finally:
        _stop(worker)
        log.close()
        sandbox.fault(first_host, "heal")
        sandbox.fault(second_host, "heal")


def _actions(sandbox: Any, incident_id: int) -> list:
    store = _store(sandbox)
    try:
        return store.actions(incident_id)
    finally:
        store.close()
