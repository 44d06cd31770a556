"""Scale-out: one real PostgreSQL holds both the Prefect server's database and the Lazarus store
(``state.url``); two process workers, each in a working directory of its own as on two machines,
serve one work pool; the watch is sharded over two deployments.

Two sandbox services die at once; the automation starts a recover run per opened incident. The
service-down playbook here waits between its restart and its check, and the worker running the
first recovery to reach that wait is SIGKILLed with every run it started, as a lost machine. Its
lease lapses, a watch on the other worker hands the recovery over, and the recover run the
automation starts for that takes it over: the finished restart is not run again, the interrupted
wait and the check run once, the incident resolves. Prefect marks the dead run Crashed once its
heartbeats stop, and each shard's watch runs on the surviving worker. Each incident gets exactly
one restart and one firing message; a person's extra recover run for a resolved incident acts on
nothing. Which worker starts a run is Prefect's race between their polls, so the test holds each
run to exactly one start instead. Every wait is on a condition, bounded generously (a loaded
machine is slow).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from lazarus.sandbox.postgres import PostgresServer
from lazarus.shard import owners
from lazarus.store import Store
from tests.conftest import need_postgres
from tests.e2e.conftest import variant
from tests.e2e.prefect_server import (
    FINAL,
    Worker,
    actions,
    api,
    free_port,
    lazarus,
    prefect_server,
    run_deployment,
    runs,
    wait_for,
    wait_incident,
    worker,
)

pytestmark = pytest.mark.e2e
SHARDS = 2
WORKERS = ("scale-a", "scale-b")
# a worker logs this only once the server let it move the run to PENDING, i.e. it runs it
# By id: a recover run renames itself ("recover #12 ...") after the worker logged their first name.
SUBMITTING = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
ABORTED = re.compile(r"Aborted submission of flow run '([0-9a-f-]{36})'")
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SETTLE = "steps/settle"
SERVICE_DOWN = {  # the shipped one, with a wait to die in between the restart and the check
    "version": 1,
    "name": "service-down",
    "trigger": {"matchers": ['symptom="service_down"']},
    "steps": [
        {"id": "restart", "action": "ssh.restart", "retries": 2, "retry_delay": "2s"},
        {"id": "settle", "action": "wait", "with": {"duration": "10s"}},
        {"id": "check", "action": "http.check", "with": {"within": "30s", "interval": "1s"}},
    ],
    "verify": [{"id": "cleared", "action": "symptom.cleared", "with": {"within": "30s"}}],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`prefect server start` on a throwaway PostgreSQL 15 cluster of its own, which holds the
    Lazarus store too: its URL rides in LAZARUS_STATE_URL of every process the test starts."""
    import psycopg

    need_postgres()
    cluster = PostgresServer()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE prefect")
            conn.execute("CREATE DATABASE lazarus")
        url = cluster.dsn("prefect").replace("postgresql://", "postgresql+asyncpg://", 1)
        with prefect_server(tmp_path, free_port(), database_url=url) as env:
            yield {**env, "LAZARUS_STATE_URL": cluster.dsn("lazarus")}
    finally:
        cluster.stop()


def _ids(stdout: str) -> dict[str, str]:
    """Deployment ids of the watch shards and recover: `lazarus deploy` prints them first."""
    ids = [line.split()[1] for line in stdout.splitlines() if line.startswith("deployment-id ")]
    names = [f"watch-{i}" for i in range(SHARDS)] + ["recover"]
    assert len(ids) > len(names), stdout
    return dict(zip(names, ids, strict=False))


def _new_final(env: dict[str, str], deployment_id: str, earlier: set[str]) -> dict[str, Any] | None:
    """The deployment's run that is not in ``earlier``, once it has finished."""
    new = [r for r in runs(env, deployment_id) if r["id"] not in earlier]
    return new[0] if new and new[0]["state_type"] in FINAL else None


def _started(workers: list[Worker]) -> Counter[tuple[str, str]]:
    """How often each worker started each flow run, as far as its log says so far (its
    submissions less those the server aborted because the other worker had it)."""
    seen: Counter[tuple[str, str]] = Counter()
    for w in workers:
        text = w.log.read_text()
        seen.update((w.name, run) for run in SUBMITTING.findall(text))
        seen.subtract((w.name, run) for run in ABORTED.findall(text))
    return +seen  # only positive counts: runs this worker really started


def _online(env: dict[str, str]) -> set[str]:
    """Names of the workers the server sees polling the lazarus pool (heartbeat still fresh)."""
    workers = api(env, "work_pools/lazarus/workers/filter", {})
    return {w["name"] for w in workers if w["status"] == "ONLINE"}


def _victims(sandbox: Any) -> list[str]:
    """Two sandbox hosts on different watch shards (every shard holds at least one)."""
    owner = owners([h.name for h in sandbox.hosts], SHARDS)
    by_shard = {shard: name for name, shard in sorted(owner.items())}
    return sorted(by_shard.values())


def _settling(db: str) -> tuple[int, str] | None:
    """(incident, flow run id) of a recovery in its wait step, read from its lease."""
    store = Store(db)
    try:
        with store.transaction() as tx:
            row = tx.execute(
                "SELECT incident_id, owner FROM recovery_leases WHERE step = ?", (SETTLE,)
            ).fetchone()
    finally:
        store.close()
    found = RUN_ID.search(row["owner"]) if row is not None else None
    return (row["incident_id"], found.group(0)) if found else None


def _completed_since(
    env: dict[str, str], deployment_id: str, since: datetime
) -> dict[str, Any] | None:
    """A run of the deployment that began after ``since`` and completed."""
    return next(
        (
            r
            for r in _ended(env, deployment_id, "COMPLETED")
            if datetime.fromisoformat(r["start_time"]) > since
        ),
        None,
    )


def _ended(env: dict[str, str], deployment_id: str, state_type: str) -> list[dict[str, Any]]:
    """The deployment's runs that ended in ``state_type``; a failed one fails the test."""
    found = runs(env, deployment_id)
    failed = [(r["name"], r["state"]["message"]) for r in found if r["state_type"] == "FAILED"]
    assert not failed, failed
    return [r for r in found if r["state_type"] == state_type]


def test_two_workers_two_shards_one_killed_mid_playbook_each_incident_handled_once(
    healthy_sandbox: Any, server: dict[str, str], tmp_path: Path
) -> None:
    sandbox = healthy_sandbox  # every fault it makes is cleared again afterwards
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "service-down.yaml").write_text(yaml.safe_dump(SERVICE_DOWN))
    config = variant(sandbox, "scale-out", {
        "state.url": "env:LAZARUS_STATE_URL",
        "watch.interval": 2,
        "playbooks.dir": str(books),
        "playbooks.fleet_cap": 2,
        "playbooks.lease": "15s",
        "notify.route.group_by": ["host", "symptom"],  # one message group per fault
    })  # fmt: skip
    db = server["LAZARUS_STATE_URL"]
    chat_before = len(sandbox.chat())
    deployed = lazarus(server, "deploy", "-c", str(config), "--shards", str(SHARDS))
    assert deployed.returncode == 0, deployed.stderr
    ids = _ids(deployed.stdout)
    assert lazarus(server, "auto-remediation", "on").returncode == 0

    victims = _victims(sandbox)
    for host in victims:
        sandbox.fault(host, "kill")
    with (
        worker(server, tmp_path, WORKERS[0]) as first,
        worker(server, tmp_path, WORKERS[1]) as second,
    ):
        pool = [first, second]
        # the worker whose recover run is in the wait, restart done, dies with it
        taken, killed_run = wait_for("a recovery in its wait step", lambda: _settling(db), 300)
        dead = wait_for(
            "the worker of that run",
            lambda: next((w for w in pool if killed_run in w.running()), None),
        )
        dead.die()
        died = datetime.now(UTC)
        restarted = {h: sandbox.service_pid(h) for h in victims}  # what the restarts started
        survivor = next(w for w in pool if w is not dead)

        incidents = [
            wait_incident(db, host, ("resolved", "escalated"), limit=300) for host in victims
        ]
        for incident in incidents:
            assert incident.state == "resolved", incident.reason
            assert sandbox.health(incident.host) == 200  # checked on the host itself
            if incident.id == taken:  # the takeover did not restart it again
                assert sandbox.service_pid(incident.host) == restarted[incident.host]
            done = actions(db, incident.id)
            # the restart the dead run finished is not run again; the rest ran once
            assert [a for a in done if a[0] == "ssh.restart"] == [
                ("ssh.restart", "automation", True)
            ]
            assert [a[0] for a in done if a[2]].count("wait") == 1, done
            assert [a[0] for a in done if a[2]].count("http.check") == 1, done
            # one firing message for the fault, whichever shard's watch or worker saw it
            firing = [
                m
                for m in sandbox.chat()[chat_before:]
                if "FIRING" in str(m) and f"web@{incident.host}" in str(m)
            ]
            assert len(firing) == 1, firing
        handed = [a for a in actions(db, taken) if a[0] == "reconcile"]
        assert handed == [("reconcile", "lazarus", True)], handed  # taken over, no person needed

        by_survivor = _started(pool)
        for shard in range(SHARDS):  # each shard's watch ran to completion; only the dead
            watch = ids[f"watch-{shard}"]  # worker's runs crashed, as Prefect was told (one
            # it had set Pending may have died before its worker logged it)
            wait_for(f"a completed watch-{shard} run", partial(_ended, server, watch, "COMPLETED"))
            for run in _ended(server, watch, "CRASHED"):
                assert "its worker died" in run["state"]["message"], run
                assert not by_survivor[(survivor.name, run["id"])], run

        # a person's extra recover run for a resolved incident acts on nothing
        finished = incidents[0]
        before, earlier = actions(db, finished.id), {r["id"] for r in runs(server, ids["recover"])}
        run_deployment(server, "recover/recover", incident_id=finished.id)
        extra = wait_for(
            "the extra recover run", lambda: _new_final(server, ids["recover"], earlier), 180
        )
        assert extra["state_type"] == "COMPLETED", extra["state_name"]
        assert actions(db, finished.id) == before
        # why, in its final state (its logs reach a loaded server in batches, or not at all)
        assert extra["state_name"] == "Left alone", extra["state"]
        assert "another run has it" in extra["state"]["message"], extra["state"]

        # the dead worker's runs are marked Crashed once their heartbeats stop; every other
        # recover run completed
        def settled() -> list[dict[str, Any]] | None:
            found = runs(server, ids["recover"])
            return found if all(r["state_type"] in FINAL for r in found) else None

        recovers = wait_for("every recover run to end", settled, 300)
        crashed = {r["id"] for r in recovers if r["state_type"] == "CRASHED"}
        assert killed_run in crashed
        assert all(r["state_type"] == "COMPLETED" for r in recovers if r["id"] not in crashed)
        assert len(recovers) - len(crashed) >= len(victims) + 1

        # the survivor serves the pool. Each recover run ran once: Prefect counts a run's starts
        # in run_count, and a run both workers started would count 2 (the workers' logs are no
        # proof either way: a loaded server's log batches arrive late). None that the dead
        # worker lost was started again by the survivor.
        assert survivor.name in _online(server)
        for r in recovers:
            ran = 1 if r["id"] not in crashed or r["id"] == killed_run else r["run_count"]
            assert r["run_count"] == ran <= 1, (r["name"], r["state_type"], r["run_count"])
        by_survivor = _started(pool)
        assert not [run for run in crashed if by_survivor[(survivor.name, run)]], crashed

        # each shard's watch goes on without the dead worker: whatever run of it that worker
        # held (Running: crashed by the automation; Pending: let go after the slot's grace)
        for shard in range(SHARDS):
            wait_for(f"a watch-{shard} run completed since the kill", partial(
                _completed_since, server, ids[f"watch-{shard}"], died), 300)  # fmt: skip
