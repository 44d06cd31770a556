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
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    return httpx.post(f"{API}/flow_runs/filter", json=body, timeout=10).json()


def _wait_completed(deployment_id: str, limit: float = 90) -> dict[str, Any]:
    for _ in range(int(limit)):
        done = [
            r for r in _runs(deployment_id) if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")
        ]
        if done:
            return done[0]
        time.sleep(1)
    pytest.fail(f"no finished run of deployment {deployment_id}")


def _wait_incident(db: Path, limit: int = 60) -> int:
    """The id of the first incident the scheduled watch runs open (they need a few cycles)."""
    from lazarus.store import Store

    for _ in range(limit):
        if db.exists():
            store = Store(db)
            try:
                active = store.active()
            finally:
                store.close()
            if active:
                return active[0].id
        time.sleep(1)
    pytest.fail("the scheduled watch runs opened no incident")


def test_deploy_schedule_and_manual_recover(sandbox: Any, server: dict[str, str], tmp_path: Path):
    config = variant(
        sandbox, "prefect-server", {"state.path": "state/prefect-server.db", "watch.interval": 2}
    )
    deploy = ["lazarus", "deploy", str(config)]
    first = subprocess.run(deploy, env=server, capture_output=True, text=True, timeout=120)
    second = subprocess.run(deploy, env=server, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    ids = _ids(first.stdout)
    assert len(ids) == 2
    assert _ids(second.stdout) == ids

    off = ["lazarus", "auto-remediation", "off"]
    assert subprocess.run(off, env=server, capture_output=True, timeout=60).returncode == 0
    host = sandbox.hosts[1].name
    sandbox.fault(host, "kill")  # watch opens an incident but, switched off, starts no recovery
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", "lazarus", "--type", "process"],
        env={**server, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        watch_run = _wait_completed(ids[0])
        assert watch_run["state_type"] == "COMPLETED", watch_run["state"]
        incident = _wait_incident(sandbox.root / "state" / "prefect-server.db")
        run = ["prefect", "deployment", "run", "recover/recover", "-p", f"incident_id={incident}"]
        run += ["-p", "dry_run=true"]
        started = subprocess.run(run, env=server, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        recover_run = _wait_completed(ids[1])
        assert recover_run["state_type"] == "COMPLETED", recover_run["state"]
    finally:
        _stop(worker)
        log.close()
        sandbox.fault(host, "heal")
