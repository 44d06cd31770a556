"""SQLite snapshots and restores through the backup API: checked, atomic, nothing lost."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from lazarus.config import Database
from lazarus.errors import ActionError, VerifyFailed
from lazarus.snapshots import list_snapshots, prune, restore, snapshot, sqlite, verify
from lazarus.snapshots.files import sha256_of

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE customers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    amount INTEGER NOT NULL CHECK (amount > 0)
);
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20)
INSERT INTO customers (name) SELECT 'customer ' || n FROM g;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200)
INSERT INTO orders (customer_id, amount) SELECT 1 + n % 20, n FROM g;
"""


def query(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn, conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def shop(tmp_path: Path) -> Database:
    live = tmp_path / "live.db"
    with closing(sqlite3.connect(live)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # as applications usually run it
        conn.executescript(SCHEMA)
    return Database(
        name="shop",
        kind="sqlite",
        dsn=str(live),
        snapshots={"dir": str(tmp_path / "snaps")},
        tables=["customers", "orders"],
        check="SELECT sum(amount) = 20100 FROM orders",
    )


def live_of(db: Database) -> Path:
    return Path(db.dsn)


def snaps(db: Database) -> Path:
    return Path(db.snapshots.dir)


def test_snapshot_is_published_whole_with_its_sidecar(shop: Database) -> None:
    snap = snapshot(shop, snaps(shop))

    side = json.loads(snap.sidecar.read_text())
    assert side["sha256"] == sha256_of(snap.path) and side["size"] == snap.path.stat().st_size
    assert side["row_counts"] == {"customers": 20, "orders": 200}
    assert side["kind"] == "sqlite" and side["reason"] == "scheduled"
    assert snap.path.name.startswith("shop-") and snap.path.suffix == ".sqlite3"
    assert sorted(p.name for p in snaps(shop).iterdir()) == [snap.path.name, snap.sidecar.name]
    assert snaps(shop).stat().st_mode & 0o777 == 0o700
    assert query(snap.path, "PRAGMA journal_mode") == [("delete",)]  # self-contained file
    assert verify(snap.path) == snap


def test_restore_brings_back_rows_keys_and_autoincrement(shop: Database) -> None:
    live = live_of(shop)
    snap = snapshot(shop, snaps(shop))
    app = sqlite3.connect(live)  # an application connection stays open across the restore
    app.execute("PRAGMA foreign_keys = ON")
    with app:
        app.execute("DROP TABLE orders")
        app.execute("UPDATE customers SET name = 'x' || id")

    report = restore(shop, snap)

    assert report.row_counts_before == {"customers": 20, "orders": None}
    assert report.row_counts_after == {"customers": 20, "orders": 200}
    assert app.execute("SELECT sum(amount) FROM orders").fetchone() == (20100,)
    assert app.execute("SELECT name FROM customers WHERE id = 3").fetchone() == ("customer 3",)
    with app:
        assert (
            app.execute("INSERT INTO orders (customer_id, amount) VALUES (1, 5)").lastrowid == 201
        )
    with pytest.raises(sqlite3.IntegrityError), app:
        app.execute("INSERT INTO orders (customer_id, amount) VALUES (999, 5)")
    app.close()
    # nothing lost: the broken state is in the safety snapshot
    safety = list_snapshots(snaps(shop), "shop")[0]
    assert safety.path == report.safety_snapshot and safety.reason == "safety"
    assert query(safety.path, "SELECT name FROM customers WHERE id = 3") == [("x3",)]


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_an_altered_snapshot_is_refused_and_nothing_changes(shop: Database, damage: str) -> None:
    snap = snapshot(shop, snaps(shop))
    data = snap.path.read_bytes()
    snap.path.write_bytes(data[:4096] if damage == "truncated" else data[:-10] + b"0123456789")
    query(live_of(shop), "DELETE FROM orders WHERE id > 100")

    with pytest.raises(ActionError, match="nothing was changed"):
        restore(shop, snap.path)

    assert query(live_of(shop), "SELECT count(*) FROM orders") == [(100,)]
    assert len(list_snapshots(snaps(shop), "shop")) == 1  # no safety snapshot was even taken


def test_a_snapshot_failing_integrity_check_is_refused(shop: Database) -> None:
    snap = snapshot(shop, snaps(shop))
    ((root, page_size),) = query(
        snap.path,
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master"
        " WHERE name = 'orders'",
    )
    data = bytearray(snap.path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + 12] = b"\x05" + b"\xff" * 11  # a damaged b-tree page, faithfully hashed
    snap.path.write_bytes(bytes(data))
    side = json.loads(snap.sidecar.read_text()) | {"sha256": sha256_of(snap.path)}
    snap.sidecar.write_text(json.dumps(side))

    with pytest.raises(ActionError, match=r"integrity_check|cannot be read"):
        sqlite.verify(snap.path)
    with pytest.raises(ActionError, match="original data is intact"):
        restore(shop, snap.path)
    assert query(live_of(shop), "SELECT count(*) FROM orders") == [(200,)]


def test_a_snapshot_failing_the_check_is_refused_before_the_live_file_is_touched(
    shop: Database,
) -> None:
    query(live_of(shop), "UPDATE orders SET amount = 1")
    bad = snapshot(shop, snaps(shop))
    query(live_of(shop), "UPDATE orders SET amount = id")

    with pytest.raises(VerifyFailed, match="sum\\(amount\\) = 20100"):
        restore(shop, bad)

    assert query(live_of(shop), "SELECT sum(amount) FROM orders") == [(20100,)]


def test_a_live_check_failure_after_the_copy_puts_the_safety_snapshot_back(
    shop: Database,
) -> None:
    snap = snapshot(shop, snaps(shop))
    query(live_of(shop), "INSERT INTO customers (name) VALUES ('live only')")
    # passes on the snapshot file, fails once the data sits in live.db
    picky = shop.model_copy(
        update={
            "check": "SELECT count(*) = 0 FROM pragma_database_list WHERE file LIKE '%/live.db'"
        }
    )

    with pytest.raises(VerifyFailed, match="put the safety snapshot"):
        restore(picky, snap)

    assert query(live_of(shop), "SELECT count(*) FROM customers") == [(21,)]


def test_prune_keeps_the_newest_and_ignores_foreign_files(shop: Database) -> None:
    taken = [snapshot(shop, snaps(shop)) for _ in range(5)]
    (snaps(shop) / "shop-notes.txt.json").write_text("not a sidecar")

    removed = prune(snaps(shop), "shop", keep=shop.snapshots.keep - 4)  # default keep 7 -> 3

    assert removed == [t.path for t in taken[1::-1]]
    assert [s.path for s in list_snapshots(snaps(shop), "shop")] == [t.path for t in taken[:1:-1]]
    assert (snaps(shop) / "shop-notes.txt.json").exists()
    with pytest.raises(ValueError):
        prune(snaps(shop), "shop", keep=0)


def test_snapshot_of_a_missing_database_fails_cleanly(shop: Database, tmp_path: Path) -> None:
    gone = shop.model_copy(update={"dsn": str(tmp_path / "nope.db")})

    with pytest.raises(ActionError, match="does not exist"):
        snapshot(gone, snaps(shop))

    assert not (tmp_path / "nope.db").exists()
    assert list(snaps(shop).iterdir()) == []
