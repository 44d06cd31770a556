"""What the watch saw, kept for diagnosis in another process: the recover flow (a worker, a
person's run from the UI) reads the log lines and changes of the incident's service and host
from the store instead of diagnosing blind.

Log lines are kept per stream for ``BEFORE_S`` (what diagnosis looks back over), at most
``KEEP_LINES`` newest per service instance, so a storm costs a bounded table.
"""

from __future__ import annotations

from lazarus import changes
from lazarus.diagnose.evidence import BEFORE_S, Change, LogLine
from lazarus.logcollect.cycle import LogBatch
from lazarus.model import Incident
from lazarus.store import Store

KEEP_LINES = 500


def remember_lines(store: Store, batch: LogBatch) -> int:
    """Keep this cycle's lines; forget those past the look-back or the per-stream cap."""
    kept = 0
    with store.transaction() as db:
        for f in batch.files:
            rows = [(batch.at, f.host, f.service, line) for line in f.lines[-KEEP_LINES:]]
            db.executemany(
                "INSERT INTO recent_lines (at, host, service, line) VALUES (?, ?, ?, ?)", rows
            )
            kept += len(rows)
            db.execute(
                "DELETE FROM recent_lines WHERE host = ? AND service = ? AND id <= ("
                "SELECT id FROM recent_lines WHERE host = ? AND service = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (f.host, f.service, f.host, f.service, KEEP_LINES),
            )
        db.execute("DELETE FROM recent_lines WHERE at < ?", (batch.at - BEFORE_S,))
    return kept


def diagnosis_inputs(store: Store, incident: Incident) -> tuple[list[LogLine], list[Change]]:
    """The lines of the incident's service (every host) or, for a host-level incident, of its
    host, from ``BEFORE_S`` before onset; and the changes recorded over that span."""
    start = incident.detected_at - BEFORE_S
    with store.transaction() as db:
        where = "service = ?" if incident.service else "host = ?"
        rows = db.execute(
            f"SELECT host, service, line FROM recent_lines WHERE {where} AND at >= ? ORDER BY id",
            (incident.service or incident.host, start),
        ).fetchall()
    return [LogLine(*r) for r in rows], changes.since(store, start)
