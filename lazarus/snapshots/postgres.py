"""PostgreSQL: whole-database snapshots, restores that lose nothing, checks, stuck transactions.

A restore never touches the live database until a candidate snapshot has been restored into a
scratch database and passed its checks there (walking back to older candidates until one does)
and a safety snapshot of the current state is taken; only then are the databases swapped by
rename, and the old one is kept (``<db>__pre_restore_<ts>``). Any failure puts the names back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from lazarus.config import Database, DbCheck
from lazarus.errors import ActionError, LazarusError, VerifyFailed
from lazarus.secrets import Secret
from lazarus.snapshots import files, stuck
from lazarus.snapshots._pg import Server, Swap, row_counts
from lazarus.snapshots._tools import PG_BIN, run
from lazarus.snapshots.checks import CheckResult, judge
from lazarus.snapshots.files import Reason, RestoreReport, Snapshot
from lazarus.snapshots.stuck import EndedBackend


def snapshot(
    db: Database,
    snapshot_dir: Path,
    *,
    reason: Reason = "scheduled",
    timeout: float = 3600.0,
) -> Snapshot:
    """``pg_dump -Fc`` of the whole database; the row counts and the dump see the same data."""
    server = Server(db.dsn, db.name, "db.snapshot")
    path = files.new_path(snapshot_dir, db.name, ".dump")
    partial = files.partial_of(path)
    try:
        with server.connect(timeout=timeout) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            counts = row_counts(conn, db.tables)
            version = conn.execute("SHOW server_version").fetchone()[0]
            dump = ["-Fc", f"--snapshot={exported}", "-f", str(partial)]
            server.tool("pg_dump", *dump, step="db.snapshot", timeout=timeout)
    except psycopg.Error as exc:
        files.discard(partial)
        raise ActionError("db.snapshot", f"{db.name}: {server.scrub(exc)}") from None
    except BaseException:
        files.discard(partial)
        raise
    meta = {"server_version": version, "row_counts": counts, "reason": reason}
    return files.publish(partial, path, database=db.name, kind="postgres", **meta)


def verify(snap: Snapshot | Path, *, timeout: float = 600.0) -> Snapshot:
    """Refuse a snapshot unless its sha256 matches and ``pg_restore --list`` can read it."""
    snap = files.load(snap)
    if snap.kind != "postgres":
        raise ActionError("db.verify", f"snapshot {snap.path} is a {snap.kind} snapshot")
    files.check_digest(snap)
    run([str(PG_BIN / "pg_restore"), "--list", str(snap.path)], step="db.verify", timeout=timeout)
    return snap


def restore(
    db: Database,
    candidates: Snapshot | Path | Sequence[Snapshot | Path],
    *,
    safety_dir: Path | None = None,
    maintenance_db: str = "postgres",
    timeout: float = 3600.0,
    jobs: int = 1,
) -> RestoreReport:
    """Replace the whole database with the first candidate that passes its checks on a scratch
    copy (see the module docstring); ``jobs`` parallel pg_restore workers.

    Raises ActionError (a step failed) or VerifyFailed (no candidate passed its checks, or the
    swapped-in data failed them); either way the message says where the original data is.
    """
    started = time.monotonic()
    server = Server(db.dsn, db.name, "db.restore")
    tried: list[str] = []
    failures: list[LazarusError] = []
    for snap in [candidates] if isinstance(candidates, Snapshot | Path) else candidates:
        try:
            swap = Swap(server, maintenance_db, timeout)
        except ActionError as exc:
            raise _untouched(db, str(exc), tried) from exc
        try:
            snap = verify(snap, timeout=timeout)
            _restore_into(server, swap, snap, timeout, jobs)
            _check(server, db, swap.scratch, timeout)
        except (LazarusError, psycopg.Error) as exc:
            reason = server.scrub(exc) if isinstance(exc, psycopg.Error) else str(exc)
            tried.append(f"{Path(getattr(snap, 'path', snap)).name} refused: {reason}")
            failures.append(exc if isinstance(exc, LazarusError) else ActionError("pg", reason))
            swap.undo()
            swap.close()
            continue
        try:
            return _swap_in(db, server, swap, snap, tried, safety_dir, timeout, started)
        finally:
            swap.close()
    if any(isinstance(f, VerifyFailed) for f in failures):
        raise VerifyFailed(_untouched_text(db, "no candidate passed its checks", tried))
    raise _untouched(db, "no candidate could be restored", tried)


def _restore_into(server: Server, swap: Swap, snap: Snapshot, timeout: float, jobs: int) -> None:
    swap.create_scratch()
    into = ["--no-owner", "--exit-on-error", f"--jobs={jobs}", "-d", swap.scratch, str(snap.path)]
    server.tool("pg_restore", *into, step="db.restore", timeout=timeout, dbname=swap.scratch)


def _swap_in(
    db: Database,
    server: Server,
    swap: Swap,
    snap: Snapshot,
    tried: list[str],
    safety_dir: Path | None,
    timeout: float,
    started: float,
) -> RestoreReport:
    """Safety snapshot of the live data, then the renames; any failure puts them back."""
    steps = [f"verified {snap.path.name} (sha256) and restored it into {swap.scratch}, checked"]
    try:
        safety = snapshot(db, safety_dir or snap.path.parent, reason="safety", timeout=timeout)
    except LazarusError as exc:
        swap.undo()
        raise _untouched(db, f"safety snapshot failed ({exc})", tried) from exc
    steps.append(f"safety snapshot {safety.path.name}")
    stage = f"swapping {swap.scratch!r} in for {swap.target!r}"
    try:
        swap.swap()
        steps.append(f"renamed {swap.target} -> {swap.aside}, {swap.scratch} -> {swap.target}")
        stage = f"re-checking {swap.target!r} after the swap"
        after = _check(server, db, swap.target, timeout)
        steps.append(f"re-checked {swap.target}")
    except (LazarusError, psycopg.Error) as exc:
        raise _failed(db, stage, exc, swap, safety) from exc
    return RestoreReport(
        database=db.name,
        snapshot=snap.path,
        safety_snapshot=safety.path,
        steps=steps,
        row_counts_before=safety.row_counts,
        row_counts_after=after,
        kept_as=swap.aside,
        tried=tried,
        seconds=round(time.monotonic() - started, 3),
    )


def _untouched(db: Database, reason: str, tried: Sequence[str] = ()) -> ActionError:
    return ActionError("db.restore", _untouched_text(db, reason, tried))


def _untouched_text(db: Database, reason: str, tried: Sequence[str]) -> str:
    listed = f"; tried: {'; '.join(tried)}" if tried else ""
    live = Server(db.dsn, db.name, "db.restore").dbname
    return (
        f"{db.name}: {reason}{listed}; nothing was changed, the original data is intact"
        f" in database {live!r}"
    )


def _check(server: Server, db: Database, dbname: str, timeout: float) -> dict[str, int | None]:
    """Row counts of the configured tables, after requiring them non-empty, the check true and
    every watch check within its bounds (change limits aside: there is no previous run here)."""
    with server.connect(dbname, timeout=timeout) as conn:
        counts = row_counts(conn, db.tables)
        answer = None
        if db.check is not None:
            try:
                answer = conn.execute(db.check).fetchone()  # type: ignore[arg-type]
            except psycopg.Error as exc:
                raise VerifyFailed(
                    f"database {dbname!r}: check {db.check!r} failed: {server.scrub(exc)}"
                ) from None
    files.require_sane(f"database {dbname!r}", counts, db.check, answer)
    bad = [r for r in run_checks(db, db.checks, dbname=dbname) if not r.ok]
    if bad:
        raise VerifyFailed(f"database {dbname!r}: " + "; ".join(r.summary() for r in bad))
    return counts


def run_checks(
    db: Database,
    checks: Sequence[DbCheck],
    *,
    dbname: str | None = None,
    previous: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Run each check in its own read-only transaction under its statement timeout.

    A check that errors, times out or tries to write is a failed check (``error``), never
    damage; ``previous`` holds each check's last good value, for change limits.
    """
    if not checks:
        return []
    previous = previous or {}
    server = Server(db.dsn, db.name, "db.check")
    try:
        conn = server.connect(dbname, read_only=True)
    except ActionError as exc:
        return [judge(db.name, c, exc) for c in checks]
    with conn:
        return [judge(db.name, c, _answer(server, conn, c), previous.get(c.name)) for c in checks]


def _answer(server: Server, conn: psycopg.Connection, check: DbCheck) -> object:
    """The first column of the check's first row, or the error it ended with (in words)."""
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {int(check.timeout * 1000)}")
            row = conn.execute(check.sql).fetchone()  # type: ignore[arg-type]
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        return ValueError(f"the check tries to write (read-only transaction): {server.scrub(exc)}")
    except psycopg.errors.QueryCanceled:
        return TimeoutError(f"timed out after {check.timeout:g}s (statement_timeout)")
    except psycopg.Error as exc:
        return ValueError(server.scrub(exc))
    return None if row is None else row[0]


def verify_on_scratch(
    db: Database, snap: Snapshot, *, maintenance_db: str = "postgres", timeout: float = 3600.0
) -> Snapshot:
    """Restore ``snap`` into a scratch database, run its checks there, drop the scratch, and
    mark the sidecar ``good`` or ``bad`` with what was found."""
    server = Server(db.dsn, db.name, "db.verify")
    swap = Swap(server, maintenance_db, timeout)
    try:
        verify(snap, timeout=timeout)
        _restore_into(server, swap, snap, timeout, jobs=1)
        _check(server, db, swap.scratch, timeout)
    except (LazarusError, psycopg.Error) as exc:
        reason = server.scrub(exc) if isinstance(exc, psycopg.Error) else str(exc)
        return files.mark(snap, "bad", reason)
    finally:
        swap.undo()
        swap.close()
    return files.mark(snap, "good", "restored into a scratch database and checked")


def stuck_sessions(
    db: Database, *, idle_in_transaction_for: float, blocking_for: float
) -> list[EndedBackend]:
    """The sessions past the limits (not ended): what ``db_stuck_transaction`` reports."""
    server = Server(db.dsn, db.name, "db.stuck")
    try:
        with server.connect(timeout=30) as conn:
            rows = conn.execute(stuck.QUERY).fetchall()
    except psycopg.Error as exc:
        raise ActionError("db.stuck", server.scrub(exc)) from None
    planned = (
        stuck.plan(
            stuck.Session(*row),
            idle_in_transaction_for=idle_in_transaction_for,
            blocking_for=blocking_for,
        )
        for row in rows
    )
    return [p for p in planned if p is not None]


def blocked_sessions(db: Database) -> int:
    """How many sessions of the database wait on a lock another session holds."""
    server = Server(db.dsn, db.name, "db.blocked_cleared")
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    try:
        with server.connect(timeout=30) as conn:
            return int(conn.execute(query).fetchone()[0])
    except psycopg.Error as exc:
        raise ActionError("db.blocked_cleared", server.scrub(exc)) from None


def _failed(
    db: Database, stage: str, exc: BaseException, swap: Swap, safety: Snapshot
) -> LazarusError:
    """The error a failed restore raises, after putting the databases back as they were."""
    reason = swap.server.scrub(exc) if isinstance(exc, psycopg.Error) else str(exc)
    undone = swap.undo()
    where = (
        f"the original data is intact in database {swap.target!r}"
        if not swap.moved_aside
        else f"the original data is kept in database {swap.aside!r}"
    )
    message = (
        f"{db.name}: restore failed while {stage}: {reason}; put back: "
        f"{'; '.join(undone) or 'nothing to undo'}; {where} and in the safety "
        f"snapshot {safety.path}"
    )
    if isinstance(exc, VerifyFailed):
        return VerifyFailed(message)
    return ActionError("db.restore", message)


def end_stuck_transactions(
    dsn: str | Secret, *, idle_in_transaction_for: float, blocking_for: float
) -> list[EndedBackend]:
    """End sessions idle in a transaction, and queries blocking others, past the limits
    (pg_terminate_backend / pg_cancel_backend; see stuck.py for which gets what)."""
    server = Server(dsn, "the database", "db.rollback_stuck")
    ended = []
    try:
        with server.connect(timeout=30) as conn:
            for row in conn.execute(stuck.QUERY).fetchall():
                planned = stuck.plan(
                    stuck.Session(*row),
                    blocking_for=blocking_for,
                    idle_in_transaction_for=idle_in_transaction_for,
                )
                if planned is None:
                    continue
                call = (
                    "pg_terminate_backend" if planned.action == "terminate" else "pg_cancel_backend"
                )
                done = conn.execute(
                    sql.SQL("SELECT {}(%s)").format(sql.Identifier(call)), [planned.pid]
                ).fetchone()[0]
                ended.append(planned.model_copy(update={"ended": bool(done)}))
    except psycopg.Error as exc:
        raise ActionError("db.rollback_stuck", server.scrub(exc)) from None
    return ended
