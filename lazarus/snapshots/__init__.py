"""Database snapshots and restores that lose nothing: PostgreSQL (pg_dump, PITR) and SQLite.

``snapshot``, ``verify`` and ``restore`` pick the right kind from the Database config (or the
snapshot's sidecar); the kind modules hold the work::

    files.py     snapshot files + sidecars, listing, retention, the report types
    postgres.py  pg_dump/pg_restore, restore by scratch database + rename, stuck transactions
    pitr.py      base backup + WAL archive -> the cluster as it was at a given time
    sqlite.py    the backup API in both directions
"""

from __future__ import annotations

from pathlib import Path

from lazarus.config import Database
from lazarus.snapshots import files, postgres, sqlite
from lazarus.snapshots.files import RestoreReport, Snapshot, list_snapshots, prune
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
    "restore_to_time",
    "snapshot",
    "verify",
]

_KINDS = {"postgres": postgres, "sqlite": sqlite}


def snapshot(db: Database, snapshot_dir: Path) -> Snapshot:
    """Snapshot the whole database into ``snapshot_dir``."""
    return _KINDS[db.kind].snapshot(db, snapshot_dir)


def verify(snap: Snapshot | Path) -> Snapshot:
    """Raise ActionError unless the snapshot is complete, unaltered and readable."""
    snap = files.load(snap)
    return _KINDS[snap.kind].verify(snap)


def restore(
    db: Database, snap: Snapshot | Path, *, safety_dir: Path | None = None
) -> RestoreReport:
    """Replace the whole database with ``snap`` after a safety snapshot; nothing is lost."""
    return _KINDS[db.kind].restore(db, snap, safety_dir=safety_dir)
