"""Where each (host, path) and each (host, journal unit) was read up to, kept in the store.

A row keeps the cursor (inode, byte offset, mid-cut-line flag), the lines cut so far, and the
last error, so a file that stopped being readable shows why without anyone reading task logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from lazarus.logcollect.tail import Cursor
from lazarus.store import Store


@dataclass(frozen=True)
class FileState:
    """One file's row: its cursor (None until first read), lines cut so far, last error."""

    host: str
    path: str
    cursor: Cursor | None
    cut: int
    error: str
    at: float


class Offsets:
    """Cursors per (host, path) in the store's own table."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, host: str, path: str) -> Cursor | None:
        state = self._row(host, path)
        return state.cursor if state else None

    def save(self, host: str, path: str, cursor: Cursor, cut: int, at: float) -> None:
        """Store where reading resumes; a successful read clears the last error."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO log_offsets (host, path, inode, pos, skipping, cut, error, at)"
                " VALUES (?,?,?,?,?,?,'',?) ON CONFLICT (host, path) DO UPDATE SET"
                " inode=excluded.inode, pos=excluded.pos, skipping=excluded.skipping,"
                " cut=log_offsets.cut+excluded.cut, error='', at=excluded.at",
                (host, path, cursor.inode, cursor.offset, int(cursor.skipping), cut, at),
            )

    def fail(self, host: str, path: str, error: str, at: float) -> None:
        """Record why a file could not be read; its cursor stays where it was."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO log_offsets (host, path, error, at) VALUES (?,?,?,?)"
                " ON CONFLICT (host, path) DO UPDATE SET error=excluded.error, at=excluded.at",
                (host, path, error, at),
            )

    def status(self) -> list[FileState]:
        """Every file ever tailed, by host and path."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT host, path, inode, pos, skipping, cut, error, at FROM log_offsets"
                " ORDER BY host, path"
            ).fetchall()
        return [_state(row) for row in rows]

    def _row(self, host: str, path: str) -> FileState | None:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT host, path, inode, pos, skipping, cut, error, at FROM log_offsets"
                " WHERE host=? AND path=?",
                (host, path),
            ).fetchone()
        return _state(row) if row else None


def _state(row: tuple) -> FileState:
    host, path, inode, pos, skipping, cut, error, at = row
    cursor = Cursor(int(inode), int(pos), bool(skipping)) if inode is not None else None
    return FileState(host, path, cursor, int(cut), error, float(at))


@dataclass(frozen=True)
class JournalState:
    """One unit's row: its cursor (None until first read, '' = from the oldest entry), how often
    its cursor was lost and reading started again, last error."""

    host: str
    unit: str
    cursor: str | None
    restarts: int
    error: str
    at: float


class JournalCursors:
    """journalctl cursors per (host, unit) in the store's own table, as :class:`Offsets`."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, host: str, unit: str) -> str | None:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT cursor FROM journal_cursors WHERE host=? AND unit=?", (host, unit)
            ).fetchone()
        return row[0] if row else None

    def save(self, host: str, unit: str, cursor: str, restarted: bool, at: float) -> None:
        """Store where reading resumes; a successful read clears the last error."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO journal_cursors (host, unit, cursor, restarts, error, at)"
                " VALUES (?,?,?,?,'',?) ON CONFLICT (host, unit) DO UPDATE SET"
                " cursor=excluded.cursor, restarts=journal_cursors.restarts+excluded.restarts,"
                " error='', at=excluded.at",
                (host, unit, cursor, int(restarted), at),
            )

    def fail(self, host: str, unit: str, error: str, at: float) -> None:
        """Record why a journal could not be read; its cursor stays where it was."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO journal_cursors (host, unit, error, at) VALUES (?,?,?,?)"
                " ON CONFLICT (host, unit) DO UPDATE SET error=excluded.error, at=excluded.at",
                (host, unit, error, at),
            )

    def status(self) -> list[JournalState]:
        """Every journal ever read, by host and unit."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT host, unit, cursor, restarts, error, at FROM journal_cursors"
                " ORDER BY host, unit"
            ).fetchall()
        return [JournalState(h, u, c, int(r), e, float(a)) for h, u, c, r, e, a in rows]
