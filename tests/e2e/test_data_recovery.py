"""Data recovery through the real watch loop, on a real PostgreSQL 15 and the sandbox's config
with a ``databases:`` entry written as the README shows it.

The fault is injected with plain SQL (a client deleting rows, a session left in a transaction);
what the test checks afterwards it reads from the database itself, not through Lazarus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]
ROWS = 10_000
SCHEMA = f"""
CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL, note text NOT NULL);
INSERT INTO orders SELECT g, g % 97 + 1, md5(g::text) FROM generate_series(1, {ROWS}) g;
"""
# what a person compares: every row's content, in key order
DIGEST = "SELECT count(*), md5(string_agg(id || ':' || amount || ':' || note, ',' ORDER BY id))"


def sql(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def digest(dsn: str) -> tuple:
    return sql(dsn, f"{DIGEST} FROM orders")[0]


def shop(postgres: Any, name: str) -> str:
    sql(postgres.dsn(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sql(postgres.dsn(), f'CREATE DATABASE "{name}"')
    sql(postgres.dsn(name), SCHEMA)
    return postgres.dsn(name)


def configure(sandbox: Any, name: str, dsn: str, **extra: Any) -> Path:
    """The sandbox config plus the database, as the README's `databases:` section writes it."""
    database = {
        "name": name,
        "kind": "postgres",
        "host": sandbox.hosts[0].name,
        "dsn": dsn,
        "snapshots": {"dir": f"snapshots/{name}", "keep": 5},
        "tables": ["orders"],
        "checks": [
            {
                "name": "orders",
                "sql": "SELECT count(*) FROM orders",
                "min": 9000,
                "max_drop": "10%",
                "interval": "1s",
                "timeout": "5s",
            },
            {
                "name": "amounts",
                "sql": "SELECT count(*) FROM orders WHERE amount <= 0",
                "equals": 0,
                "interval": "1s",
            },
        ],
        **extra,
    }
    return variant(
        sandbox,
        name,
        {
            "state.path": f"state/{name}.db",
            "watch.interval": "1s",
            # beside the sandbox's own database, which its web service depends on
            "inventory.databases": [*sandbox_databases(sandbox), database],
        },
    )


def sandbox_databases(sandbox: Any) -> list[dict[str, Any]]:
    return yaml.safe_load(sandbox.config_path.read_text())["inventory"].get("databases", [])


def take(config: Path, name: str) -> None:
    from lazarus.cli import main

    assert main(["snapshot", "take", "-c", str(config), name]) == 0


def watch_once(config: Path) -> dict[str, int]:
    """One watch cycle, started again as a schedule would while a cycle is skipped (the lease
    of the last one, or the server's slot, not yet free)."""
    from flows.watch import watch

    for _ in range(30):
        counts = watch(str(config))
        if "skipped" not in counts:
            return counts
        time.sleep(1)
    pytest.fail("every watch cycle was skipped for 30 s")


def watch_approving(config: Path, meanwhile: Callable[[], None] = lambda: None) -> dict[str, int]:
    """One watch cycle whose recovery asks for approval; ``meanwhile`` runs while it waits,
    then the test answers as the UI's form does. A recovery that waits for a person runs
    detached from the cycle (the watch goes on), so the outcome is the recover run's end:
    ``resolved`` for Completed, ``escalated`` for Failed."""
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    outcome: dict[str, Any] = {}
    time.sleep(1.0)  # a check runs once per its interval (1s): a cycle sooner keeps its verdict
    thread = threading.Thread(target=lambda: outcome.update(watch_once(config)), daemon=True)
    thread.start()
    paused = None
    for _ in range(180):
        paused = paused_run()
        if paused is not None:
            break
        time.sleep(1)
    assert paused is not None, f"no approval was asked; the watch cycle ended with {outcome}"
    meanwhile()
    resume_flow_run(paused, run_input={"approver": "ana", "decision": "approve", "comment": "go"})
    thread.join(timeout=300)
    assert not thread.is_alive(), "the watch cycle did not finish"
    with get_client(sync_client=True) as client:
        for _ in range(300):
            state = client.read_flow_run(paused).state
            if state is not None and state.is_final():
                break
            time.sleep(1)
    assert state is not None and state.is_final(), f"the recover run did not end: {state}"
    return {"resolved": int(state.is_completed()), "escalated": int(state.is_failed())}


def paused_run() -> Any:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=paused)
    return runs[0].id if runs else None


def incidents(sandbox: Any, name: str) -> list[Any]:
    from lazarus.store import Store

    store = Store(sandbox.root / "state" / f"{name}.db")
    try:
        return [i for i in store.recent() if i.symptom.startswith("db_")]
    finally:
        store.close()


def actions(sandbox: Any, name: str, incident_id: int) -> list[Any]:
    from lazarus.store import Store

    store = Store(sandbox.root / "state" / f"{name}.db")
    try:
        return store.actions(incident_id)
    finally:
        store.close()


def snapshots_of(sandbox: Any, name: str) -> list[Any]:
    from lazarus.snapshots import list_snapshots

    return list_snapshots(sandbox.root / "snapshots" / name, name)


def test_deleted_rows_raise_db_corrupt_and_approval_brings_them_back_twice(
    healthy_sandbox: Any, postgres: Any
) -> None:
    sb, name = healthy_sandbox, "dr_orders"
    dsn = shop(postgres, name)
    config = configure(sb, name, dsn)
    good = digest(dsn)
    take(config, name)
    assert watch_once(config)["opened"] == 0  # healthy: the checks pass, a baseline is kept

    sql(dsn, "DELETE FROM orders WHERE id % 10 < 3")  # 30% of the rows gone
    assert watch_approving(config)["resolved"] == 1

    [first] = incidents(sb, name)
    assert (first.symptom, first.host, first.service) == ("db_corrupt", sb.hosts[0].name, name)
    assert first.labels["check"] == "orders" and first.labels["value"] == "7000"
    assert first.state == "resolved"
    assert digest(dsn) == good  # every row back, as it was
    kept = [s for s in snapshots_of(sb, name) if s.reason == "damaged"]
    assert [s.row_counts for s in kept] == [{"orders": 7000}]  # the damaged state is kept
    assert watch_once(config)["opened"] == 0  # nothing reopens it

    sql(dsn, "DELETE FROM orders WHERE id > 5000")  # damaged again
    assert watch_approving(config)["resolved"] == 1

    assert digest(dsn) == good  # the good data, never the damaged copy
    second = incidents(sb, name)[0]
    assert second.id != first.id and second.state == "resolved"
    restored = [a.detail for a in actions(sb, name, second.id) if a.action == "db.restore"]
    assert restored and all(s.path.name not in restored[0] for s in snapshots_of(sb, name)
                            if s.reason != "scheduled")  # fmt: skip


def test_a_restore_whose_every_candidate_fails_leaves_the_live_database_and_escalates(
    healthy_sandbox: Any, postgres: Any
) -> None:
    sb, name = healthy_sandbox, "dr_allbad"
    dsn = shop(postgres, name)
    config = configure(sb, name, dsn)
    take(config, name)
    take(config, name)
    # the data grows past anything a snapshot holds, and the floor with it
    sql(dsn, f"INSERT INTO orders SELECT g, 5, 'new' FROM generate_series({ROWS + 1}, 14000) g")
    data = yaml.safe_load(config.read_text())
    data["inventory"]["databases"][-1]["checks"][0]["min"] = 12000
    config.write_text(yaml.safe_dump(data))
    assert watch_once(config)["opened"] == 0
    sql(dsn, "DELETE FROM orders WHERE id % 10 < 3")
    before = digest(dsn)

    assert watch_approving(config)["escalated"] == 1

    assert digest(dsn) == before  # the live database exactly as it was
    [incident] = incidents(sb, name)
    assert incident.state == "escalated"
    scheduled = [s for s in snapshots_of(sb, name) if s.reason == "scheduled"]
    assert len(scheduled) == 2
    for snap in scheduled:  # the list it tried, each with why
        assert f"{snap.path.name} refused" in incident.reason
    assert "below the minimum 12000" in incident.reason
    assert "nothing was changed" in incident.reason
    found = sql(postgres.dsn(), f"SELECT datname FROM pg_database WHERE datname LIKE '{name}_%'")
    assert found == []  # no scratch or half-restored database left behind


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_a_truncated_or_tampered_snapshot_is_skipped_for_an_older_good_one(
    healthy_sandbox: Any, postgres: Any, damage: str
) -> None:
    sb, name = healthy_sandbox, f"dr_{damage}"
    dsn = shop(postgres, name)
    config = configure(sb, name, dsn)
    take(config, name)
    good = digest(dsn)
    sql(dsn, "UPDATE orders SET note = 'newer' WHERE id = 1")
    take(config, name)
    older, newer = sorted(snapshots_of(sb, name), key=lambda s: s.created_at)
    data = newer.path.read_bytes()
    if damage == "truncated":
        newer.path.write_bytes(data[: len(data) // 2])
    else:
        newer.path.write_bytes(data[:-64] + bytes(b ^ 0x5A for b in data[-64:]))
    assert watch_once(config)["opened"] == 0
    sql(dsn, "DELETE FROM orders WHERE id % 10 < 3")

    assert watch_approving(config)["resolved"] == 1

    assert digest(dsn) == good  # the older snapshot's data
    [incident] = incidents(sb, name)
    [restore] = [a for a in actions(sb, name, incident.id) if a.action == "db.restore"]
    assert older.path.name in restore.detail and "refusing 1" in restore.detail


def test_a_stuck_transaction_blocking_writers_is_ended_and_the_writers_finish(
    healthy_sandbox: Any, postgres: Any
) -> None:
    sb, name = healthy_sandbox, "dr_stuck"
    dsn = shop(postgres, name)
    config = configure(sb, name, dsn, stuck={"idle_in_transaction": "3s", "blocking": "3s"})
    holder = psycopg.connect(dsn)  # takes a row lock and goes idle inside its transaction
    holder.execute("UPDATE orders SET amount = amount + 1 WHERE id = 1")
    finished: list[int] = []

    def writer(n: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE orders SET note = 'writer' WHERE id = 1")
            finished.append(n)

    writers = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(3)]
    try:
        for w in writers:
            w.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not incidents(sb, name):
            watch_once(config)
        [incident] = incidents(sb, name)
        for w in writers:
            w.join(timeout=30)

        assert incident.symptom == "db_stuck_transaction"
        assert incident.state == "resolved", incident.reason
        assert sorted(finished) == [0, 1, 2]
        assert sql(dsn, "SELECT note FROM orders WHERE id = 1") == [("writer",)]
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        assert sql(dsn, waiting) == [(0,)]
        ended = f"SELECT count(*) FROM pg_stat_activity WHERE pid = {holder.info.backend_pid}"
        assert sql(dsn, ended) == [(0,)]  # the stuck session was ended
    finally:
        holder.close()


def test_interval_recovery_repairs_the_damage_and_keeps_every_later_write_bit_for_bit(
    healthy_sandbox: Any, postgres_pitr: Any
) -> None:
    sb, name, pg = healthy_sandbox, "dr_interval", postgres_pitr
    dsn = shop(pg, name)
    pitr = {"base_backups": str(pg.root / "base"), "wal_archive": str(pg.wal_archive)}
    config = configure(sb, name, dsn, pitr=pitr)
    take(config, name)
    # before the interval: writes the snapshot does not hold
    sql(dsn, "INSERT INTO orders SELECT g, 3, 'before' FROM generate_series(20001, 20100) g")
    sql(dsn, "UPDATE orders SET note = 'before' WHERE id = 5")
    untouched_since = f"{DIGEST} FROM orders WHERE id NOT IN (7, 10) AND id < 30000"
    original = sql(dsn, untouched_since)
    assert watch_once(config)["opened"] == 0  # the last good check: the interval starts here
    # during: 30% of the rows deleted, one good row added
    sql(dsn, "DELETE FROM orders WHERE id <= 10000 AND id % 10 < 3")
    sql(dsn, "INSERT INTO orders VALUES (30000, 7, 'during')")
    after_rows = (
        "SELECT id, amount, note FROM orders WHERE id >= 40000 OR id IN (7, 10) ORDER BY id"
    )
    later: dict[str, list[tuple]] = {}

    def writes_after_the_interval() -> None:  # while the approval waits
        sql(
            dsn,
            "INSERT INTO orders SELECT g, 9, 'after ' || g FROM generate_series(40000, 40049) g",
        )
        sql(dsn, "UPDATE orders SET note = 'after' WHERE id = 7")  # untouched by the damage
        sql(dsn, "INSERT INTO orders VALUES (10, 1, 'put back by hand')")  # deleted, then redone
        later["rows"] = sql(dsn, after_rows)

    assert watch_approving(config, writes_after_the_interval)["resolved"] == 1

    [incident] = incidents(sb, name)
    assert incident.state == "resolved", incident.reason
    asked = [m for m in sb.mail() if "waiting for approval" in str(m) and name in str(m)]
    assert asked and "orders: insert 3000, update 0, conflicts 0" in str(asked[-1])
    # the damage is repaired: every row of before the interval is back as it was
    assert sql(dsn, after_rows) == later["rows"]  # every later write, bit for bit
    assert sql(dsn, "SELECT note FROM orders WHERE id = 30000") == [("during",)]
    assert sql(dsn, untouched_since) == original  # rows changed after t2 aside
    [apply] = [a for a in actions(sb, name, incident.id) if a.action == "db.interval_apply"]
    assert "insert 2999" in apply.detail and "conflicts 1" in apply.detail
    assert "conflicts left alone 1 [10]" in apply.detail
