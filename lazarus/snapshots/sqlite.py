"""SQLite: snapshots and restores through the online backup API, in both directions.

The backup API copies a consistent image while the application keeps its connections, and a
restore lands in one write transaction: it either replaces the whole database or nothing.
A restore checks each candidate itself (integrity, row counts, the SQL checks) before touching
the live file, walking back to older candidates until one passes, takes a safety snapshot
first, and puts that back if the live check then fails. Checks run on a read-only connection
(``query_only``) and a progress handler ends one that runs past its timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from lazarus.config import Database, DbCheck
from lazarus.errors import ActionError, LazarusError, VerifyFailed
from lazarus.secrets import resolve
from lazarus.snapshots import files
from lazarus.snapshots.checks import CheckResult, judge
from lazarus.snapshots.files import Reason, RestoreReport, Snapshot

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


def snapshot(db: Database, snapshot_dir: Path, *, reason: Reason = "scheduled") -> Snapshot:
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
    bad = [r for r in _judge_all(db, conn, db.checks, {}) if not r.ok]
    if bad:
        raise VerifyFailed(f"{where}: " + "; ".join(r.summary() for r in bad))
    return counts


def run_checks(
    db: Database, checks: Sequence[DbCheck], *, previous: dict[str, float] | None = None
) -> list[CheckResult]:
    """Each check on a read-only connection to the live file, bounded by its timeout."""
    if not checks:
        return []
    live = _live_path(db)
    try:
        if not live.is_file():
            raise ActionError("db.check", f"database file {live} does not exist")
        conn = sqlite3.connect(f"{live.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except (sqlite3.Error, ActionError) as exc:
        return [judge(db.name, c, exc) for c in checks]
    with closing(conn):
        return _judge_all(db, conn, checks, previous or {})


def _judge_all(
    db: Database, conn: sqlite3.Connection, checks: Sequence[DbCheck], previous: dict[str, float]
) -> list[CheckResult]:
    conn.execute("PRAGMA query_only = 1")
    return [judge(db.name, c, _answer(conn, c), previous.get(c.name)) for c in checks]


def _answer(conn: sqlite3.Connection, check: DbCheck) -> object:
    """The first column of the check's first row, or the error it ended with (in words)."""
    deadline = time.monotonic() + check.timeout
    conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        row = conn.execute(check.sql).fetchone()
    except sqlite3.OperationalError as exc:
        if time.monotonic() > deadline:
            return TimeoutError(f"timed out after {check.timeout:g}s")
        if "readonly" in str(exc) or "query_only" in str(exc):
            return ValueError(f"the check tries to write (read-only connection): {exc}")
        return ValueError(str(exc))
    except sqlite3.Error as exc:
        return ValueError(str(exc))
    finally:
        conn.set_progress_handler(None, 0)
    return None if row is None else row[0]


def verify_on_scratch(db: Database, snap: Snapshot) -> Snapshot:
    """Run the checks on the snapshot (opened immutable: a copy nothing can change) and mark
    its sidecar ``good`` or ``bad`` with what was found."""
    try:
        snap = verify(snap)
        with closing(_open_readonly(snap.path)) as conn:
            _check(db, conn, f"snapshot {snap.path.name}")
    except LazarusError as exc:
        return files.mark(files.load(snap), "bad", str(exc))
    return files.mark(snap, "good", "integrity_check and checks passed on the snapshot")


def restore(
    db: Database,
    candidates: Snapshot | Path | Sequence[Snapshot | Path],
    *,
    safety_dir: Path | None = None,
) -> RestoreReport:
    """Replace the live database with the first candidate that passes its checks, losing
    nothing; raise ActionError/VerifyFailed (listing what was tried) when none does."""
    started = time.monotonic()
    live = _live_path(db)
    untouched = "nothing was changed, the original data is intact"
    tried: list[str] = []
    found = None
    verify_failed = False
    for snap in [candidates] if isinstance(candidates, Snapshot | Path) else candidates:
        try:
            snap = verify(snap)
            with closing(_open_readonly(snap.path)) as conn:
                _check(db, conn, f"snapshot {snap.path.name}")
        except LazarusError as exc:
            verify_failed |= isinstance(exc, VerifyFailed)
            tried.append(f"{Path(getattr(snap, 'path', snap)).name} refused: {exc}")
            continue
        found = snap
        break
    if found is None:
        message = f"{db.name}: no snapshot restored; tried: {'; '.join(tried)}; {untouched}"
        raise VerifyFailed(message) if verify_failed else ActionError("db.restore", message)
    snap = found
    steps = [f"verified {snap.path.name} (sha256, integrity_check, checks)"]
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
        tried=tried,
        seconds=round(time.monotonic() - started, 3),
    )


def _copy(source: Path, live: Path) -> None:
    """Backup API from ``source`` onto the live database, in a single step (one transaction)."""
    with (
        closing(_open_readonly(source)) as src,
        closing(sqlite3.connect(live, timeout=BUSY_TIMEOUT)) as dst,
    ):
        src.backup(dst)
