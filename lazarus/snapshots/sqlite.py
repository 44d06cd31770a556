"""SQLite: snapshots and restores through the online backup API, in both directions.

The backup API copies a consistent image while the application keeps its connections, and a
restore lands in one write transaction: it either replaces the whole database or nothing.
A restore checks the snapshot itself (integrity, row counts, the SQL check) before touching the
live file, takes a safety snapshot first, and puts that back if the live check then fails.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Literal

from lazarus.config import Database
from lazarus.errors import ActionError, LazarusError, VerifyFailed
from lazarus.secrets import resolve
from lazarus.snapshots import files
from lazarus.snapshots.files import RestoreReport, Snapshot

BUSY_TIMEOUT = 30.0


def _live_path(db: Database) -> Path:
    return Path(resolve(db.dsn).reveal()).expanduser()


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot change ``path`` (immutable: no -wal/-shm files appear)."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT
    )


def _row_counts(conn: sqlite3.Connection, tables: list[str]) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        try:
            counts[table] = conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]
        except sqlite3.OperationalError:
            counts[table] = None
    return counts


def snapshot(
    db: Database, snapshot_dir: Path, *, reason: Literal["scheduled", "safety"] = "scheduled"
) -> Snapshot:
    """A consistent copy of the live database, published atomically with its sidecar."""
    live = _live_path(db)
    path = files.new_path(snapshot_dir, db.name, ".sqlite3")
    partial = files.partial_of(path)
    try:
        if not live.is_file():
            raise ActionError("db.snapshot", f"{db.name}: database file {live} does not exist")
        with (
            closing(
                sqlite3.connect(
                    f"{live.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT
                )
            ) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            counts = _row_counts(dst, db.tables)
    except sqlite3.Error as exc:
        files.discard(partial)
        raise ActionError("db.snapshot", f"{db.name}: {exc}") from None
    except BaseException:
        files.discard(partial)
        raise
    return files.publish(
        partial,
        path,
        database=db.name,
        kind="sqlite",
        server_version=f"SQLite {sqlite3.sqlite_version}",
        row_counts=counts,
        reason=reason,
    )


def verify(snap: Snapshot | Path) -> Snapshot:
    """Refuse a snapshot unless its sha256 matches and ``PRAGMA integrity_check`` says ok."""
    snap = files.load(snap)
    if snap.kind != "sqlite":
        raise ActionError("db.verify", f"snapshot {snap.path} is a {snap.kind} snapshot")
    files.check_digest(snap)
    try:
        with closing(_open_readonly(snap.path)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.Error as exc:
        raise ActionError("db.verify", f"snapshot {snap.path} cannot be read: {exc}") from None
    if problems != ["ok"]:
        raise ActionError(
            "db.verify", f"snapshot {snap.path} fails integrity_check: {'; '.join(problems[:5])}"
        )
    return snap


def _check(db: Database, conn: sqlite3.Connection, where: str) -> dict[str, int | None]:
    counts = _row_counts(conn, db.tables)
    answer = None
    if db.check is not None:
        try:
            answer = conn.execute(db.check).fetchone()
        except sqlite3.Error as exc:
            raise VerifyFailed(f"{where}: check {db.check!r} failed: {exc}") from None
    files.require_sane(where, counts, db.check, answer)
    return counts


def restore(
    db: Database, snap: Snapshot | Path, *, safety_dir: Path | None = None
) -> RestoreReport:
    """Replace the live database with ``snap``, losing nothing; raise ActionError/VerifyFailed."""
    started = time.monotonic()
    live = _live_path(db)
    untouched = "nothing was changed, the original data is intact"
    try:
        snap = verify(snap)
        with closing(_open_readonly(snap.path)) as conn:
            _check(db, conn, f"snapshot {snap.path.name}")
    except ActionError as exc:
        raise ActionError(
            "db.restore", f"{db.name}: snapshot refused ({exc}); {untouched}"
        ) from exc
    except VerifyFailed as exc:
        raise VerifyFailed(f"{db.name}: snapshot refused ({exc}); {untouched}") from exc
    steps = [f"verified {snap.path.name} (sha256, integrity_check, check)"]
    try:
        safety = snapshot(db, safety_dir or snap.path.parent, reason="safety")
    except LazarusError as exc:
        raise ActionError(
            "db.restore", f"{db.name}: safety snapshot failed ({exc}); {untouched}"
        ) from exc
    steps.append(f"safety snapshot {safety.path.name}")
    try:
        _copy(snap.path, live)
    except sqlite3.Error as exc:  # the copy is one transaction: nothing of it landed
        raise ActionError(
            "db.restore", f"{db.name}: copying the snapshot in failed ({exc}); {untouched}"
        ) from None
    steps.append(f"copied {snap.path.name} into {live}")
    try:
        with closing(sqlite3.connect(live, timeout=BUSY_TIMEOUT)) as conn:
            after = _check(db, conn, f"database {live}")
    except (LazarusError, sqlite3.Error) as exc:
        _copy(safety.path, live)
        raise VerifyFailed(
            f"{db.name}: restored data failed its check ({exc}); put the safety "
            f"snapshot {safety.path} back, the original data is intact"
        ) from exc
    steps.append(f"checked {live}")
    return RestoreReport(
        database=db.name,
        snapshot=snap.path,
        safety_snapshot=safety.path,
        steps=steps,
        row_counts_before=safety.row_counts,
        row_counts_after=after,
        seconds=round(time.monotonic() - started, 3),
    )


def _copy(source: Path, live: Path) -> None:
    """Backup API from ``source`` onto the live database, in a single step (one transaction)."""
    with (
        closing(_open_readonly(source)) as src,
        closing(sqlite3.connect(live, timeout=BUSY_TIMEOUT)) as dst,
    ):
        src.backup(dst)
