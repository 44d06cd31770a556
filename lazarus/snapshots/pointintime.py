"""Point-of-failure recovery: the database as it was just before the damage, not as it was at
the last snapshot.

A side copy of the cluster is brought to the moment (sidecopy.py), the database is dumped from
it as a ``pitr`` snapshot, and that goes through the same restore as any snapshot: into a
scratch database, checked, only then swapped in (the live database untouched on any failure).
The report says what this keeps compared with the newest good snapshot.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from lazarus.config import Database
from lazarus.snapshots import files, postgres
from lazarus.snapshots.files import RestoreReport
from lazarus.snapshots.sidecopy import side_copy


class PointReport(BaseModel):
    """A point-in-time restore, and the writes it kept that the newest good snapshot lacks."""

    restore: RestoreReport
    at: datetime
    snapshot_at: datetime | None  # the newest good snapshot before ``at``
    rows_kept: dict[str, int]  # per table: rows at ``at`` minus rows in that snapshot

    def summary(self) -> str:
        since = f" than the snapshot of {self.snapshot_at:%H:%M:%S}" if self.snapshot_at else ""
        kept = ", ".join(f"{t} {n:+d} rows" for t, n in self.rows_kept.items()) or "nothing"
        return (
            f"restored {self.restore.database} to {self.at:%H:%M:%S} UTC; kept {kept} more{since}"
        )


def restore_to_point(db: Database, at: datetime, snapshot_dir: Path) -> PointReport:
    """Replace ``db`` with its state at ``at`` (tz-aware); raises like any restore."""
    with side_copy(db, at) as side:
        then = db.model_copy(update={"dsn": side.server.conninfo()})
        snap = postgres.snapshot(then, snapshot_dir, reason="pitr")
    snap = files.mark(snap, "good", f"dumped from a side copy at {at.isoformat()}")
    report = postgres.restore(db, [snap], safety_dir=snapshot_dir)
    older = [
        s for s in files.list_snapshots(snapshot_dir, db.name) if s.candidate and s.created_at <= at
    ]
    base = older[0] if older else None
    kept = {
        t: (n or 0) - ((base.row_counts.get(t) or 0) if base else 0)
        for t, n in report.row_counts_after.items()
    }
    return PointReport(restore=report, at=at, snapshot_at=base and base.created_at, rows_kept=kept)
