"""PostgreSQL snapshots and restores against a real PostgreSQL 15 cluster: nothing is ever lost."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lazarus.config import Database
from lazarus.errors import ActionError, VerifyFailed
from lazarus.snapshots import end_stuck_transactions, list_snapshots, prune
from lazarus.snapshots import postgres as pgsnap

pytestmark = pytest.mark.e2e

_names = itertools.count(1)

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    amount numeric(10, 2) NOT NULL CHECK (amount > 0)
);
CREATE SEQUENCE invoice_no START 1000;
INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 20) g;
INSERT INTO orders (customer_id, amount) SELECT 1 + g % 20, g FROM generate_series(1, 200) g;
SELECT nextval('invoice_no') FROM generate_series(1, 5);
"""


def sql(server: Any, dbname: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        cur = conn.execute(query, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def databases_like(server: Any, prefix: str) -> set[str]:
    rows = sql(
        server,
        "postgres",
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
        (prefix,),
    )
    return {r[0] for r in rows}


@pytest.fixture
def shop(postgres: Any, tmp_path: Path) -> Iterator[Database]:
    """A database with keys, a check constraint and sequences; dropped (with any copies) after."""
    name = f"shop{next(_names)}"
    sql(postgres, "postgres", f'CREATE DATABASE "{name}"')
    sql(postgres, name, SCHEMA)
    yield Database(
        name=name,
        kind="postgres",
        dsn=postgres.dsn(name),
        snapshots={"dir": str(tmp_path)},
        tables=["customers", "orders"],
        check="SELECT sum(amount) = 20100 FROM orders",
    )
    for db in databases_like(postgres, name):
        sql(postgres, "postgres", f'DROP DATABASE "{db}" WITH (FORCE)')


def test_restore_brings_back_a_dropped_table_rows_keys_and_sequences(
    postgres: Any, shop: Database, tmp_path: Path
) -> None:
    snap = pgsnap.snapshot(shop, tmp_path)
    assert snap.row_counts == {"customers": 20, "orders": 200}
    assert snap.server_version.startswith("15")
    # the fault: a table dropped, rows corrupted, a sequence moved on
    sql(
        postgres,
        shop.name,
        "DROP TABLE orders; UPDATE customers SET name = 'x' || id;"
        " SELECT setval('invoice_no', 5000)",
    )

    report = pgsnap.restore(shop, snap)

    assert report.row_counts_before == {"customers": 20, "orders": None}
    assert report.row_counts_after == {"customers": 20, "orders": 200}
    assert sql(postgres, shop.name, "SELECT sum(amount) FROM orders") == [(20100,)]
    assert sql(postgres, shop.name, "SELECT name FROM customers WHERE id = 3") == [("customer 3",)]
    assert sql(postgres, shop.name, "SELECT nextval('invoice_no')") == [(1005,)]
    assert sql(
        postgres, shop.name, "INSERT INTO orders (customer_id, amount) VALUES (1, 1) RETURNING id"
    ) == [(201,)]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        sql(postgres, shop.name, "INSERT INTO orders (customer_id, amount) VALUES (999, 1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql(postgres, shop.name, "INSERT INTO customers (name) VALUES ('customer 1')")
    # nothing lost: the broken state is kept by name and in the safety snapshot
    assert report.kept_as in databases_like(postgres, shop.name)
    assert sql(postgres, report.kept_as, "SELECT name FROM customers WHERE id = 3") == [("x3",)]
    assert report.safety_snapshot.is_file()
    assert len(list_snapshots(tmp_path, shop.name)) == 2
    assert databases_like(postgres, f"{shop.name}__restore_") == set()


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_a_bad_snapshot_is_refused_before_anything_is_touched(
    postgres: Any, shop: Database, tmp_path: Path, damage: str
) -> None:
    snap = pgsnap.snapshot(shop, tmp_path)
    data = snap.path.read_bytes()
    if damage == "truncated":
        snap.path.write_bytes(data[: len(data) // 2])
    else:
        snap.path.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    sql(postgres, shop.name, "INSERT INTO customers (name) VALUES ('added after the snapshot')")

    with pytest.raises(ActionError, match="original data is intact") as caught:
        pgsnap.restore(shop, snap)

    assert "refused" in str(caught.value)
    with pytest.raises(ActionError):
        pgsnap.verify(snap)
    assert sql(postgres, shop.name, "SELECT count(*) FROM customers") == [(21,)]
    assert databases_like(postgres, shop.name) == {shop.name}
    assert len(list_snapshots(tmp_path, shop.name)) == 1  # not even a safety snapshot taken


def test_restored_data_failing_the_check_leaves_the_original_in_place(
    postgres: Any, shop: Database, tmp_path: Path
) -> None:
    sql(postgres, shop.name, "UPDATE orders SET amount = 1")  # corrupt, then snapshot that
    bad = pgsnap.snapshot(shop, tmp_path)
    sql(
        postgres,
        shop.name,
        "UPDATE orders SET amount = id; INSERT INTO customers (name) VALUES ('newest')",
    )

    with pytest.raises(VerifyFailed, match="intact in database") as caught:
        pgsnap.restore(shop, bad)

    assert "sum(amount) = 20100" in str(caught.value)
    assert sql(postgres, shop.name, "SELECT sum(amount) FROM orders") == [(20100,)]
    assert sql(postgres, shop.name, "SELECT count(*) FROM customers") == [(21,)]
    assert databases_like(postgres, shop.name) == {shop.name}  # scratch dropped


def test_a_failure_after_the_swap_renames_everything_back(
    postgres: Any, shop: Database, tmp_path: Path
) -> None:
    snap = pgsnap.snapshot(shop, tmp_path)
    sql(postgres, shop.name, "INSERT INTO customers (name) VALUES ('live only')")
    # a check that the scratch copy passes and the swapped-in database fails
    picky = shop.model_copy(update={"check": "SELECT current_database() LIKE '%\\_\\_restore\\_%'"})

    with pytest.raises(VerifyFailed, match="re-checking") as caught:
        pgsnap.restore(picky, snap)

    assert "back to" in str(caught.value)
    assert sql(postgres, shop.name, "SELECT count(*) FROM customers") == [(21,)]
    assert databases_like(postgres, shop.name) == {shop.name}


def test_prune_keeps_the_newest_n(shop: Database, tmp_path: Path) -> None:
    taken = [pgsnap.snapshot(shop, tmp_path) for _ in range(4)]

    removed = prune(tmp_path, shop.name, keep=2)

    assert sorted(removed) == sorted(s.path for s in taken[:2])
    assert [s.path for s in list_snapshots(tmp_path, shop.name)] == [t.path for t in taken[:1:-1]]
    assert not any(p.exists() for p in removed)
    assert not list(tmp_path.glob("*.partial"))


def test_dsn_from_an_env_reference_and_errors_that_hide_the_password(
    postgres: Any, shop: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZARUS_TEST_DSN", postgres.dsn(shop.name))
    by_ref = shop.model_copy(update={"dsn": "env:LAZARUS_TEST_DSN"})
    assert pgsnap.snapshot(by_ref, tmp_path).row_counts["orders"] == 200

    wrong = postgres.dsn(shop.name).replace(postgres.password, "not-the-password-xyz")
    with pytest.raises(ActionError, match="password authentication failed") as caught:
        pgsnap.snapshot(shop.model_copy(update={"dsn": wrong}), tmp_path)
    assert "not-the-password-xyz" not in str(caught.value)
    assert postgres.password not in str(caught.value)


def test_end_stuck_transactions_ends_idle_sessions_and_cancels_blockers(
    postgres: Any, shop: Database
) -> None:
    idle = psycopg.connect(postgres.dsn(shop.name))  # a transaction left open
    idle.execute("SELECT count(*) FROM customers")
    holder = psycopg.connect(postgres.dsn(shop.name), autocommit=True)
    waiter = psycopg.connect(postgres.dsn(shop.name), autocommit=True)
    holder_pid, idle_pid = holder.info.backend_pid, idle.info.backend_pid
    outcome: dict[str, BaseException | None] = {}

    def hold_lock() -> None:  # a long query holding a lock others wait for
        try:
            with holder.transaction():
                holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                holder.execute("SELECT pg_sleep(60)")
            outcome["holder"] = None
        except psycopg.Error as exc:
            outcome["holder"] = exc

    def wait_for_lock() -> None:
        waiter.execute("SELECT count(*) FROM orders")
        outcome["waiter"] = None

    threads = [threading.Thread(target=hold_lock)]
    threads[0].start()
    _until(
        postgres,
        shop,
        "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock'"
        " AND relation = 'orders'::regclass AND granted",
    )
    threads.append(threading.Thread(target=wait_for_lock))
    threads[1].start()
    _until(postgres, shop, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    _until(
        postgres,
        shop,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND now() - query_start > interval '300 ms'",
    )
    try:
        ended = end_stuck_transactions(
            postgres.dsn(shop.name), idle_in_transaction_for=0.1, blocking_for=0.3
        )
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for conn in (idle, holder, waiter):
            conn.close()

    by_pid = {e.pid: e for e in ended}
    assert set(by_pid) == {holder_pid, idle_pid}
    assert by_pid[idle_pid].action == "terminate" and by_pid[idle_pid].ended
    assert by_pid[idle_pid].state == "idle in transaction"
    assert by_pid[holder_pid].action == "cancel" and by_pid[holder_pid].ended
    assert "pg_sleep" in by_pid[holder_pid].query
    assert by_pid[holder_pid].age_s >= 0.3
    assert isinstance(outcome["holder"], psycopg.errors.QueryCanceled)
    assert outcome["waiter"] is None  # the blocked query went through


def _until(server: Any, db: Database, query: str, attempts: int = 100) -> None:
    """Bounded wait until ``query`` returns a non-zero count."""
    import time

    for _ in range(attempts):
        if sql(server, db.name, query)[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"never true: {query}")
