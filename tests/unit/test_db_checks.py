"""Database checks in the watch, on real SQLite files: damage raises db_corrupt, a check that
errors or writes is a failed check only, restore walks back past bad candidates, retention."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lazarus import snapshots
from lazarus.config import Config, Database, DbCheck
from lazarus.dbwatch import hold_settling, watch_databases
from lazarus.errors import VerifyFailed
from lazarus.model import Anomaly, IncidentState
from lazarus.snapshots import files
from lazarus.snapshots.checks import broken_bound, judge
from lazarus.store import Store


def check(**fields) -> DbCheck:
    return DbCheck.model_validate({"name": "rows", "sql": "SELECT count(*) FROM orders", **fields})


@pytest.mark.parametrize(
    ("bounds", "value", "previous", "broken"),
    [
        ({"min": 10}, 9, None, "below the minimum 10"),
        ({"min": 10}, 10, None, ""),
        ({"max": 5}, 6, None, "above the maximum 5"),
        ({"equals": True}, 0, None, "expected 1"),
        ({"max_drop": "10%"}, 89, 100, "fell from 100, more than max_drop 10%"),
        ({"max_drop": "10%"}, 90, 100, ""),
        ({"max_drop": "5"}, 94, 100, "fell from 100, more than max_drop 5"),
        ({"max_drop": "5"}, 94, None, ""),  # no baseline yet
    ],
)
def test_bounds(bounds: dict, value: float, previous: float | None, broken: str) -> None:
    assert broken_bound(check(**bounds), value, previous) == broken


def test_an_error_or_a_non_number_is_a_failed_check_not_damage() -> None:
    failed = judge("shop", check(min=1), TimeoutError("timed out after 5s"))
    assert (failed.ok, failed.broken, failed.error) == (False, "", "timed out after 5s")
    assert judge("shop", check(min=1), "abc").error.startswith("returned str")
    assert judge("shop", check(min=1), None).error == "returned NULL or no row"


def test_a_check_without_a_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a bound"):
        check()
    with pytest.raises(ValueError, match="not a number or a percentage"):
        check(max_drop="lots")


# --- the watch on a real SQLite database ---------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Database:
    live = tmp_path / "live.db"
    with closing(sqlite3.connect(live)) as conn, conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i) for i in range(1, 101)])
    return Database.model_validate(
        {
            "name": "shop",
            "kind": "sqlite",
            "dsn": str(live),
            "snapshots": {"dir": str(tmp_path / "snaps")},
            "tables": ["orders"],
            "checks": [
                {
                    "name": "rows",
                    "sql": "SELECT count(*) FROM orders",
                    "max_drop": "10%",
                    "interval": "1s",
                },
                {
                    "name": "sane",
                    "sql": "SELECT min(amount) > 0 FROM orders",
                    "equals": True,
                    "interval": "1s",
                },
            ],
        }
    )


def config_with(db: Database, tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": [{"name": "db-1", "address": "127.0.0.1"}],
                "databases": [{**db.model_dump(), "host": "db-1"}],
            },
            "base_dir": tmp_path,
        }
    )


def run(db: Database, sql: str) -> None:
    with closing(sqlite3.connect(db.dsn)) as conn, conn:
        conn.execute(sql)


def test_damage_raises_db_corrupt_on_the_databases_host(shop: Database, tmp_path: Path) -> None:
    config = config_with(shop, tmp_path)
    store = Store(tmp_path / "state.db")
    try:
        assert watch_databases(config, store, 1000.0).anomalies == []
        run(shop, "DELETE FROM orders WHERE id % 10 < 3")  # 30% gone
        seen = watch_databases(config, store, 1002.0)
        [corrupt] = seen.anomalies
        assert (corrupt.host, corrupt.service, corrupt.symptom) == ("db-1", "shop", "db_corrupt")
        assert corrupt.labels["check"] == "rows" and corrupt.labels["value"] == "70"
        assert corrupt.labels["good_at"] == "1000.000" and corrupt.labels["bad_at"] == "1002.000"
        # not due yet: the last verdict stands, so the incident does not close for quiet
        assert [a.symptom for a in watch_databases(config, store, 1002.5).anomalies] == [
            "db_corrupt"
        ]
        # the baseline stays the last good value: still damaged a cycle later
        assert watch_databases(config, store, 1004.0).anomalies[0].labels["value"] == "70"
    finally:
        store.close()


def test_a_check_that_errors_times_out_or_writes_never_raises_db_corrupt(
    shop: Database, tmp_path: Path
) -> None:
    broken = shop.model_copy(
        update={
            "checks": [
                check(name="typo", sql="SELECT count(*) FROM ordrs", min=1),
                check(name="writes", sql="DELETE FROM orders RETURNING 1", min=1),
                check(
                    name="slow",
                    sql="WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)"
                    " SELECT count(*) FROM r",
                    min=1,
                    timeout="200ms",
                ),
            ]
        }
    )
    store = Store(tmp_path / "state.db")
    try:
        seen = watch_databases(config_with(broken, tmp_path), store, 1000.0)
    finally:
        store.close()
    assert seen.anomalies == []
    errors = {r.check: r.error for r in seen.failed_checks}
    assert "no such table: ordrs" in errors["typo"]
    assert "tries to write" in errors["writes"]
    assert "timed out after 0.2s" in errors["slow"]
    assert len(sqlite3.connect(shop.dsn).execute("SELECT * FROM orders").fetchall()) == 100


def test_lagging_alerts_on_a_recovered_databases_host_are_held_for_its_settle_time(
    shop: Database, tmp_path: Path
) -> None:
    config = config_with(shop, tmp_path)
    store = Store(tmp_path / "state.db")
    try:
        corrupt = Anomaly("db-1", "shop", "db_corrupt", "critical", "x", 1.0, {"database": "shop"})
        incident, _ = store.open_incident(corrupt)
        store.transition(incident.id, IncidentState.RESOLVED, reason="restored")
        closed = store.get(incident.id).closed_at
        lagging = Anomaly("db-1", "", "orders_low", "warning", "7000 < 9500", 2.0, {})
        elsewhere = Anomaly("web-1", "api", "service_down", "critical", "down", 2.0, {})
        again = Anomaly("db-1", "shop", "db_corrupt", "critical", "y", 2.0, {"database": "shop"})
        kept, held = hold_settling(config, store, [lagging, elsewhere, again], closed + 10)
        assert (kept, held) == ([elsewhere, again], [lagging])
        kept, held = hold_settling(config, store, [lagging], closed + shop.settle + 1)
        assert (kept, held) == ([lagging], [])
    finally:
        store.close()


# --- snapshots: verdicts, walk-back restore, retention ----------------------------------------


def test_restore_walks_back_past_damaged_and_bad_snapshots(shop: Database) -> None:
    folder = Path(shop.snapshots.dir)
    good = snapshots.take(shop, folder)
    assert good.verdict == "good"
    run(shop, "UPDATE orders SET amount = 0 WHERE id = 1")  # damage a check sees
    bad = snapshots.take(shop, folder)
    assert bad.verdict == "bad" and "sane" in bad.verdict_detail
    damaged = snapshots.snapshot(shop, folder, reason="damaged")

    report = snapshots.restore_newest_good(shop, folder)

    assert report.snapshot == good.path
    assert damaged.path != report.snapshot and bad.path != report.snapshot
    assert sqlite3.connect(shop.dsn).execute("SELECT min(amount) FROM orders").fetchone() == (1,)


def test_a_restore_whose_every_candidate_fails_leaves_the_live_database_alone(
    shop: Database,
) -> None:
    folder = Path(shop.snapshots.dir)
    first, second = snapshots.take(shop, folder), snapshots.take(shop, folder)
    stricter = shop.model_copy(update={"checks": [check(name="many", min=1000)]})
    run(shop, "DELETE FROM orders WHERE id > 50")

    with pytest.raises(VerifyFailed, match="nothing was changed") as caught:
        snapshots.restore_newest_good(stricter, folder)

    assert first.path.name in str(caught.value) and second.path.name in str(caught.value)
    assert sqlite3.connect(shop.dsn).execute("SELECT count(*) FROM orders").fetchone() == (50,)


def test_retention_keeps_n_daily_weekly_and_removes_leftovers(shop: Database) -> None:
    folder = Path(shop.snapshots.dir)
    now = datetime.now(UTC)
    ages = [timedelta(hours=h) for h in (0, 1, 2, 30, 31, 24 * 9, 24 * 10, 24 * 40)]
    taken = []
    for age in ages:
        snap = snapshots.take(shop, folder)
        snap = snap.model_copy(update={"created_at": now - age})
        files._write_sidecar(snap)
        taken.append(snap)
    partial = folder / f".shop-{now:%Y%m%dT%H%M%S.%f}Z.sqlite3.partial"
    orphan = folder / f"shop-{now:%Y%m%dT%H%M%S.%f}Z.sqlite3"
    for leftover in (partial, orphan):
        leftover.write_bytes(b"x" * 10)
        os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    foreign = folder / "notes.txt"
    foreign.write_text("mine")

    removed = snapshots.prune(folder, "shop", keep=2, daily=2, weekly=2, now=now)

    left = {s.path for s in snapshots.list_snapshots(folder, "shop")}
    # 2 newest; newest of today and yesterday (already kept + the 30 h one); newest of the
    # week before (9 days); the 31 h, 10 d and 40 d ones go
    assert left == {taken[0].path, taken[1].path, taken[3].path, taken[5].path}
    assert partial in removed and orphan in removed and foreign.exists()


def test_interval_diff_reapplies_only_what_the_interval_did_and_lists_conflicts() -> None:
    from lazarus.snapshots.interval import _diff

    start = {("1",): "a", ("2",): "b", ("3",): "c", ("4",): "d", ("5",): "e"}
    end = {("1",): "a", ("3",): "C", ("4",): "D", ("6",): "new"}  # 2, 5 deleted; 3, 4 changed
    now = {
        ("1",): "a2",
        ("3",): "C",
        ("4",): "D again",
        ("5",): "redone",
        ("6",): "new",
        ("7",): "later",
    }

    plan = _diff("orders", ["id"], start, end, now)

    assert plan.inserts == [["2"]]  # deleted by the interval, not recreated since
    assert (plan.updates, plan.expected) == ([["3"]], ["C"])
    assert plan.conflicts == [["4"], ["5"]]  # touched again after t2: left alone
    # 1 changed only after t2, 6 inserted by the interval, 7 after it: none of its business
