"""Scale-out: Lazarus on a Prefect server backed by a real PostgreSQL, two process workers on one
work pool, watch sharded over two deployments.

Two sandbox services die at once; the automation starts a recover run per opened incident, and
both workers serve the pool. Which of them starts a given run is Prefect's race between their
polls (one may win them all), so the test holds each run to exactly one start instead. Each
incident gets exactly one restart (the store's claim keeps any second run out), and a person's
extra recover run for a resolved incident acts on nothing. Workers, server and the PostgreSQL
cluster are stopped in finally blocks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lazarus.sandbox.postgres import PostgresServer
from lazarus.shard import owners
from tests.conftest import need_postgres
from tests.e2e.conftest import variant
from tests.e2e.prefect_server import (
    FINAL,
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
PORT = 4394
SHARDS = 2
WORKERS = ("scale-a", "scale-b")
# a worker logs this only once the server let it move the run to PENDING, i.e. it runs it
# By id: a recover run renames itself ("recover #12 ...") after the worker logged its first name.
SUBMITTING = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`prefect server start` on a throwaway PostgreSQL 15 cluster of its own."""
    import psycopg

    need_postgres()
    cluster = PostgresServer()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE prefect")
        url = cluster.dsn("prefect").replace("postgresql://", "postgresql+asyncpg://", 1)
        with prefect_server(tmp_path, PORT, database_url=url) as env:
            yield env
    finally:
        cluster.stop()


def _ids(stdout: str) -> dict[str, str]:
    """Deployment ids of the watch shards and recover: `lazarus deploy` prints them first."""
    ids = [line.split()[1] for line in stdout.splitlines() if line.startswith("deployment-id ")]
    names = [f"watch-{i}" for i in range(SHARDS)] + ["recover"]
    assert len(ids) > len(names), stdout
    return dict(zip(names, ids, strict=False))


def _logs(env: dict[str, str], run_id: str) -> list[str]:
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
    return [log["message"] for log in api(env, "logs/filter", body)]


def _new_final(env: dict[str, str], deployment_id: str, earlier: set[str]) -> dict[str, Any] | None:
    """The deployment's run that is not in ``earlier``, once it has finished."""
    new = [r for r in runs(env, deployment_id) if r["id"] not in earlier]
    return new[0] if new and new[0]["state_type"] in FINAL else None


def _started(logs: dict[str, Path], ids: set[str]) -> Counter[tuple[str, str]] | None:
    """How often each worker started each flow run (its submissions less those the server
    aborted because the other worker had it), once every run in ``ids`` appears there."""
    seen: Counter[tuple[str, str]] = Counter()
    for name, path in logs.items():
        text = path.read_text()
        seen.update((name, run) for run in SUBMITTING.findall(text))
        seen.subtract((name, run) for run in ABORTED.findall(text))
    seen = +seen  # only positive counts: runs this worker really started
    return seen if ids <= {run for _, run in seen} else None


def _online(env: dict[str, str]) -> set[str]:
    """Names of the workers the server sees polling the lazarus pool (heartbeat still fresh)."""
    workers = api(env, "work_pools/lazarus/workers/filter", {})
    return {w["name"] for w in workers if w["status"] == "ONLINE"}


def _victims(sandbox: Any) -> list[str]:
    """Two sandbox hosts on different watch shards (every shard holds at least one)."""
    owner = owners([h.name for h in sandbox.hosts], SHARDS)
    by_shard = {shard: name for name, shard in sorted(owner.items())}
    return sorted(by_shard.values())


def test_two_workers_two_shards_each_incident_handled_once(
    healthy_sandbox: Any, server: dict[str, str], tmp_path: Path
) -> None:
    sandbox = healthy_sandbox  # every fault it makes is cleared again afterwards
    config = variant(sandbox, "scale-out", {
        "state.path": "state/scale-out.db",
        "watch.interval": 2,
        "playbooks.fleet_cap": 2,
    })  # fmt: skip
    db = sandbox.root / "state" / "scale-out.db"
    deployed = lazarus(server, "deploy", "-c", str(config), "--shards", str(SHARDS))
    assert deployed.returncode == 0, deployed.stderr
    ids = _ids(deployed.stdout)
    assert lazarus(server, "auto-remediation", "on").returncode == 0

    victims = _victims(sandbox)
    for host in victims:
        sandbox.fault(host, "kill")
    with (
        worker(server, tmp_path, WORKERS[0]) as log_a,
        worker(server, tmp_path, WORKERS[1]) as log_b,
    ):
        incidents = [
            wait_incident(db, host, ("resolved", "escalated"), limit=150) for host in victims
        ]
        for incident in incidents:
            assert incident.state == "resolved", incident.reason
            assert sandbox.health(incident.host) == 200
            restarts = [a for a in actions(db, incident.id) if a[0] == "ssh.restart"]
            assert restarts == [("ssh.restart", "automation", True)]  # handled once

        for shard in range(SHARDS):  # each shard's watch deployment ran to completion
            completed(server, ids[f"watch-{shard}"])

        # a person's extra recover run for a resolved incident acts on nothing
        done = incidents[0]
        before, earlier = actions(db, done.id), {r["id"] for r in runs(server, ids["recover"])}
        run_deployment(server, "recover/recover", incident_id=done.id)
        extra = wait_for(
            "the extra recover run", lambda: _new_final(server, ids["recover"], earlier)
        )
        assert extra["state_type"] == "COMPLETED", extra["state_name"]
        assert actions(db, done.id) == before
        wait_for(
            "the skip in the extra run's log",
            lambda: [m for m in _logs(server, extra["id"]) if "another run has it" in m],
        )
        recovers = runs(server, ids["recover"])
        assert len(recovers) >= len(victims) + 1
        assert all(r["state_type"] == "COMPLETED" for r in recovers), recovers

        # both workers serve the pool, and each recover run was started by exactly one of them
        assert _online(server) == set(WORKERS)
        logs = dict(zip(WORKERS, (log_a, log_b), strict=True))
        run_ids = {r["id"] for r in recovers}
        started = wait_for("the workers' logs of the recover runs", lambda: _started(logs, run_ids))
        for r in recovers:
            by = [w for (w, run), n in started.items() if run == r["id"] for _ in range(n)]
            assert len(by) == 1, (r["name"], by)
