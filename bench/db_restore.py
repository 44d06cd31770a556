"""Data recovery on a ~1 GB PostgreSQL 15 database, the four paths side by side: snapshot,
full restore (pg_restore --jobs), point-in-time restore, fault-interval recovery of 1% of the
rows; with the rows each loses. Plus SQLite's backup API both ways.

    python bench/db_restore.py [--mb 1000] [--jobs 4] [--no-sqlite]

The story it times: a snapshot; writes after it (W); the last good check (t1); 1% of the rows
deleted; the first bad check (t2); writes after that (A). Interval recovery must keep W and A
and bring the 1% back; point-in-time (to t1, after A is folded into a new t1) keeps W; the full
restore loses whatever came after the snapshot. "Rows lost" counts the rows of the state each
path should reach that are missing or different afterwards (compared by key and row md5).

Needs root and Debian's postgresql-15 (the cluster runs as OS user postgres on a loopback port).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from lazarus import snapshots
from lazarus.config import Database
from lazarus.sandbox.postgres import PostgresServer
from lazarus.snapshots import interval, pointintime, postgres

ROW_BYTES = 1000  # a padded row; rows = MB * 1000
W, A = 1000, 500  # rows written after the snapshot / after the damage


def timed(what: str, call):
    started = time.perf_counter()
    result = call()
    print(f"  {what:52} {time.perf_counter() - started:7.1f} s", flush=True)
    return result


def rows(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT id, md5(t::text) FROM orders t"))


def lost(expected: dict[int, str], dsn: str) -> int:
    now = rows(dsn)
    return sum(1 for k, h in expected.items() if now.get(k) != h)


def write(dsn: str, query: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(query)  # type: ignore[arg-type]


def moment() -> datetime:
    time.sleep(1.1)  # commit timestamps either side of the moment differ clearly
    at = datetime.now(UTC)
    time.sleep(1.1)
    return at


def pg(mb: int, jobs: int, work: Path) -> None:
    server = PostgresServer(archive=True, auth_host="trust")
    try:
        write(server.dsn(), "CREATE DATABASE shop")
        dsn = server.dsn("shop")
        noise = " || ".join(["md5(random()::text)"] * (ROW_BYTES // 32))  # incompressible
        write(dsn, "CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL)")
        timed(
            f"load {mb * 1000:,} rows",
            lambda: write(
                dsn, f"INSERT INTO orders SELECT g, {noise} FROM generate_series(1, {mb * 1000}) g"
            ),
        )
        with psycopg.connect(dsn) as conn:
            (size,) = conn.execute("SELECT pg_database_size('shop')").fetchone()
        print(f"PostgreSQL 15: database of {size / 1e6:,.0f} MB, {mb * 1000:,} rows")
        db = Database.model_validate({
            "name": "shop", "kind": "postgres", "dsn": dsn, "tables": ["orders"],
            "snapshots": {"dir": str(work / "pg")},
            "checks": [{"name": "rows", "sql": "SELECT count(*) FROM orders", "min": 1}],
            "pitr": {"base_backups": str(server.root / "base"),
                     "wal_archive": str(server.wal_archive)},
        })  # fmt: skip
        snap = timed("snapshot (pg_dump -Fc)", lambda: postgres.snapshot(db, work / "pg"))
        print(f"  snapshot file {snap.size / 1e6:,.0f} MB")
        timed(
            "verify on a scratch copy (pg_restore + checks)",
            lambda: snapshots.verify_on_scratch(db, snap),
        )
        timed(
            "base backup (pg_basebackup)",
            lambda: snapshots.sidecopy.take_base_backup(db, server.root / "base"),
        )
        n = mb * 1000
        write(dsn, f"INSERT INTO orders SELECT g, 'W' FROM generate_series({n + 1}, {n + W}) g")
        t1 = moment()
        before = rows(dsn)
        write(dsn, "DELETE FROM orders WHERE id % 100 = 7")  # 1% of the rows
        t2 = moment()
        write(dsn, f"INSERT INTO orders SELECT g, 'A' FROM generate_series({n + W + 1}, "
                   f"{n + W + A}) g")  # fmt: skip
        expected = {**before, **{k: h for k, h in rows(dsn).items() if k > n + W}}

        plan = timed(
            "interval recovery: diff (two side copies)",
            lambda: interval.plan_interval(db, t1, t2, work / "interval"),
        )
        timed(
            "interval recovery: re-apply (one transaction)",
            lambda: interval.apply_interval(db, plan),
        )
        interval_lost = lost(expected, dsn)
        print(f"  {plan.summary()}")

        t3 = moment()
        before_pitr = rows(dsn)
        write(dsn, "DELETE FROM orders WHERE id % 100 = 8")
        moment()
        point = timed(
            "point-in-time restore (side copy, dump, restore)",
            lambda: pointintime.restore_to_point(db, t3, work / "pg"),
        )
        pitr_lost = lost(before_pitr, dsn)
        print(f"  {point.summary()}")

        write(dsn, "DELETE FROM orders WHERE id % 100 = 9")
        full = timed(
            f"full restore of the snapshot (pg_restore --jobs={jobs})",
            lambda: postgres.restore(db, snap, jobs=jobs, safety_dir=work / "pg"),
        )
        full_lost = lost(before_pitr, dsn)
        print(f"  full restore took {full.seconds:.1f} s in all (safety snapshot included)")
        print("\n  rows lost, against the state each path should reach:")
        print(f"    interval recovery     {interval_lost:>9,}   (W={W} and A={A} rows kept)")
        print(f"    point-in-time restore {pitr_lost:>9,}")
        print(f"    full snapshot restore {full_lost:>9,}   (every write after the snapshot)")
    finally:
        server.stop()


def sqlite(mb: int, work: Path) -> None:
    path = work / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO orders (note) VALUES (?)",
            ((os.urandom(ROW_BYTES // 2).hex(),) for _ in range(mb * 1000)),
        )
    conn.close()
    print(f"SQLite: database of {path.stat().st_size / 1e6:,.0f} MB")
    db = Database(name="shop", kind="sqlite", dsn=str(path), snapshots={"dir": str(work / "sq")},
                  tables=["orders"])  # fmt: skip
    snap = timed("snapshot (backup API)", lambda: snapshots.snapshot(db, work / "sq"))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM orders WHERE id % 2 = 0")
    conn.close()
    timed("restore (safety snapshot + restore + check)",
          lambda: snapshots.restore(db, snap, safety_dir=work / "sq-safety"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1000, help="size of the data (MB of rows)")
    parser.add_argument("--jobs", type=int, default=4, help="pg_restore parallel jobs")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lazarus-bench-db-", dir="/var/tmp") as tmp:
        pg(args.mb, args.jobs, Path(tmp))
        if not args.no_sqlite:
            sqlite(args.mb, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
