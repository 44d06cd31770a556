"""Point-in-time recovery on a real PostgreSQL 15 cluster with WAL archiving."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from lazarus.errors import ActionError
from lazarus.snapshots import Cluster, base_backup, restore_to_time

pytestmark = pytest.mark.e2e


def sql(server: Any, query: str, params: tuple | None = None) -> list[tuple]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def archive_everything(server: Any) -> None:
    """Switch to a new WAL file and wait (bounded) until the finished one is archived."""
    (segment,) = sql(server, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    for _ in range(200):
        (archived,) = sql(server, "SELECT last_archived_wal FROM pg_stat_archiver")[0]
        if archived and archived >= segment:
            return
        time.sleep(0.05)
    raise AssertionError(f"WAL file {segment} was never archived")


def cluster_of(server: Any) -> Cluster:
    return Cluster(data_dir=server.data_dir, port=server.port, host=server.host)


def test_rows_before_the_target_time_are_back_and_rows_after_are_not(postgres_pitr: Any) -> None:
    server, cluster = postgres_pitr, cluster_of(postgres_pitr)
    sql(server, "CREATE TABLE events (id int PRIMARY KEY, note text)")
    sql(server, "INSERT INTO events SELECT g, 'before backup' FROM generate_series(1, 100) g")
    backup = base_backup(cluster, server.root / "base")
    sql(server, "INSERT INTO events SELECT g, 'after backup' FROM generate_series(101, 150) g")
    (target,) = sql(server, "SELECT clock_timestamp()")[0]
    time.sleep(0.05)
    sql(server, "DELETE FROM events WHERE id <= 50")  # the fault: rows lost after the target
    sql(server, "INSERT INTO events VALUES (999, 'after target')")
    archive_everything(server)

    report = restore_to_time(cluster, backup, server.wal_archive, target, timeout=120)

    rows = dict(sql(server, "SELECT note, count(*) FROM events GROUP BY note"))
    assert rows == {"before backup": 100, "after backup": 50}
    assert sql(server, "SELECT pg_is_in_recovery()") == [(False,)]
    sql(server, "INSERT INTO events VALUES (1000, 'writable again')")
    # nothing lost: the data directory it replaced is kept, with the later rows in it
    assert report.kept_as.is_dir() and (report.kept_as / "PG_VERSION").is_file()
    assert report.data_dir == server.data_dir
    assert not (server.data_dir / "recovery.signal").exists()


def test_a_damaged_base_backup_is_refused_and_the_cluster_left_running(postgres_pitr: Any) -> None:
    server, cluster = postgres_pitr, cluster_of(postgres_pitr)
    sql(server, "CREATE TABLE kept (id int)")
    sql(server, "INSERT INTO kept VALUES (1)")
    backup = base_backup(cluster, server.root / "base")
    (backup / "PG_VERSION").write_text("99\n")  # altered after the backup was taken

    with pytest.raises(ActionError, match="pg_verifybackup"):
        restore_to_time(cluster, backup, server.wal_archive, time_now(server), timeout=60)

    assert sql(server, "SELECT count(*) FROM kept") == [(1,)]
    assert not list(server.root.glob("data.pre_pitr_*"))


def time_now(server: Any) -> Any:
    return sql(server, "SELECT now()")[0][0]


def test_a_recovery_that_cannot_reach_its_target_puts_the_original_back(
    postgres_pitr: Any,
) -> None:
    server, cluster = postgres_pitr, cluster_of(postgres_pitr)
    sql(server, "CREATE TABLE kept (id int)")
    too_early = time_now(server)  # before the base backup: recovery cannot stop there
    time.sleep(0.05)
    sql(server, "INSERT INTO kept SELECT generate_series(1, 10)")
    backup = base_backup(cluster, server.root / "base")
    archive_everything(server)

    with pytest.raises(ActionError, match="original data directory was put back"):
        restore_to_time(cluster, backup, server.wal_archive, too_early, timeout=60)

    assert sql(server, "SELECT count(*) FROM kept") == [(10,)]
    assert sql(server, "SELECT pg_is_in_recovery()") == [(False,)]
    assert list(server.root.glob("data.failed_pitr_*"))  # the attempt is kept for a look
