"""Snapshot and restore times of a ~100 MB database: PostgreSQL 15 (pg_dump -Fc, restore into a
scratch database + rename, safety snapshot first) and SQLite (backup API both ways).

    python bench/db_restore.py [--mb 100]

Needs root and Debian's postgresql-15 (the cluster runs as OS user postgres on a loopback port).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from lazarus import snapshots
from lazarus.config import Database
from lazarus.sandbox.postgres import PostgresServer

ROW_BYTES = 1000  # a padded row; rows = MB * 1000


def timed(what: str, call):
    started = time.perf_counter()
    result = call()
    print(f"{what:44} {time.perf_counter() - started:6.2f} s", flush=True)
    return result


def postgres(mb: int, work: Path) -> None:
    server = PostgresServer()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(server.dsn("shop"), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL)")
            noise = " || ".join(["md5(random()::text)"] * (ROW_BYTES // 32))  # incompressible
            conn.execute(
                f"INSERT INTO orders (note) SELECT {noise} FROM generate_series(1, %s)",
                (mb * 1000,),
            )
            (size,) = conn.execute("SELECT pg_database_size('shop')").fetchone()
        print(f"PostgreSQL 15: database of {size / 1e6:.0f} MB, {mb * 1000:,} rows")
        db = Database(name="shop", kind="postgres", dsn=server.dsn("shop"),
                      snapshots={"dir": str(work / "pg")}, tables=["orders"],
                      check="SELECT count(*) > 0 FROM orders")  # fmt: skip
        snap = timed("  snapshot (pg_dump -Fc)", lambda: snapshots.snapshot(db, work / "pg"))
        print(f"  snapshot file {snap.path.stat().st_size / 1e6:.0f} MB")
        with psycopg.connect(server.dsn("shop"), autocommit=True) as conn:
            conn.execute("DELETE FROM orders WHERE id % 2 = 0")  # half the rows lost
        report = timed(
            "  restore (safety snapshot + restore + check)",
            lambda: snapshots.restore(db, snap, safety_dir=work / "pg-safety"),
        )
        print(f"  rows back: {report.row_counts_after}, damaged copy kept as {report.kept_as}")
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
    print(f"SQLite: database of {path.stat().st_size / 1e6:.0f} MB")
    db = Database(name="shop", kind="sqlite", dsn=str(path), snapshots={"dir": str(work / "sq")},
                  tables=["orders"])  # fmt: skip
    snap = timed("  snapshot (backup API)", lambda: snapshots.snapshot(db, work / "sq"))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM orders WHERE id % 2 = 0")
    conn.close()
    timed(
        "  restore (safety snapshot + restore + check)",
        lambda: snapshots.restore(db, snap, safety_dir=work / "sq-safety"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the data to restore")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lazarus-bench-db-") as tmp:
        postgres(args.mb, Path(tmp))
        sqlite(args.mb, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
