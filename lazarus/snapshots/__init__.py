"""Database snapshots and restores that lose nothing: PostgreSQL (pg_dump, PITR) and SQLite.

``snapshot``, ``verify`` and ``restore`` pick the right kind from the Database config (or the
snapshot's sidecar); the kind modules hold the work::

    files.py     snapshot files + sidecars (verdict good/bad), listing, retention, report types
    checks.py    a check's answer judged against its bounds (damage vs a failed check)
    postgres.py  pg_dump/pg_restore, restore by scratch database + rename, checks, stuck sessions
    pitr.py      base backup + WAL archive -> the cluster as it was at a given time
    sqlite.py    the backup API in both directions
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from lazarus.config import Database, DbCheck
from lazarus.errors import ActionError
from lazarus.snapshots import files, postgres, sidecopy, sqlite
from lazarus.snapshots.checks import CheckResult
from lazarus.snapshots.files import Reason, RestoreReport, Snapshot, list_snapshots, prune
from lazarus.snapshots.pitr import (
    Cluster,
    PitrReport,
    archive_command,
    base_backup,
    restore_to_time,
)
from lazarus.snapshots.postgres import end_stuck_transactions
from lazarus.snapshots.stuck import EndedBackend

__all__ = [
    "CheckResult",
    "Cluster",
    "EndedBackend",
    "PitrReport",
    "RestoreReport",
    "Snapshot",
    "archive_command",
    "base_backup",
    "end_stuck_transactions",
    "list_snapshots",
    "prune",
    "restore",
    "restore_newest_good",
    "restore_to_time",
    "run_checks",
    "snapshot",
    "take",
    "verify",
    "verify_on_scratch",
]

_KINDS = {"postgres": postgres, "sqlite": sqlite}


def snapshot(db: Database, snapshot_dir: Path, *, reason: Reason = "scheduled") -> Snapshot:
    """Snapshot the whole database into ``snapshot_dir``."""
    return _KINDS[db.kind].snapshot(db, snapshot_dir, reason=reason)


def take(db: Database, snapshot_dir: Path) -> Snapshot:
    """A scheduled snapshot, verified on a scratch copy at once: its sidecar says good or bad.
    With ``pitr`` set, a base backup of the cluster is taken too (point-in-time recovery)."""
    if db.pitr is not None and db.kind == "postgres":
        sidecopy.take_base_backup(db, Path(db.pitr.base_backups))
    return verify_on_scratch(db, snapshot(db, snapshot_dir))


def verify(snap: Snapshot | Path) -> Snapshot:
    """Raise ActionError unless the snapshot is complete, unaltered and readable."""
    snap = files.load(snap)
    return _KINDS[snap.kind].verify(snap)


def verify_on_scratch(db: Database, snap: Snapshot | Path) -> Snapshot:
    """Restore into a scratch copy, run the checks there, mark the sidecar good or bad."""
    return _KINDS[db.kind].verify_on_scratch(db, files.load(snap))


def run_checks(
    db: Database, checks: Sequence[DbCheck], previous: dict[str, float] | None = None
) -> list[CheckResult]:
    """The database's checks on the live data, read-only, each under its timeout."""
    return _KINDS[db.kind].run_checks(db, checks, previous=previous)


def restore(
    db: Database,
    snap: Snapshot | Path | Sequence[Snapshot | Path],
    *,
    safety_dir: Path | None = None,
) -> RestoreReport:
    """Replace the whole database with the first of ``snap`` that passes its checks on a
    scratch copy, after a safety snapshot; nothing is lost."""
    return _KINDS[db.kind].restore(db, snap, safety_dir=safety_dir)


def restore_newest_good(
    db: Database, snapshot_dir: Path, *, exclude: Collection[Path] = ()
) -> RestoreReport:
    """Walk back from the newest snapshot marked good until one passes the checks on a scratch
    copy, and swap only that one in. Damaged-state, safety and unverified snapshots are never
    candidates; the error lists every one tried when none passes."""
    candidates = [
        s for s in list_snapshots(snapshot_dir, db.name) if s.candidate and s.path not in exclude
    ]
    if not candidates:
        raise ActionError(
            "db.restore",
            f"{db.name}: no snapshot marked good in {snapshot_dir} (take and verify one with"
            " `lazarus snapshot take`); nothing was changed",
        )
    return restore(db, candidates, safety_dir=snapshot_dir)
