"""The seasonal view's ring of the last period, kept row by row in the store for the watch.

A one-day period at a 15 s interval is 5,760 rows per series: for 1,000 series 46 MB, nearly all
of a cohort's state. Pickled with the cohort, every cycle read and wrote all of it (2.1 s a cycle
for 1,000 series after a day, bench/detect_extras.py). Here each slot (one row: a float64 per
series of the cohort) is a row of ``detector_rings``; a cycle loads the slots its new points will
read and overwrite, and writes back only those, inside the cycle's transaction.
"""

from __future__ import annotations

import logging
import sqlite3

import numpy as np

log = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS detector_rings (cohort INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " row BLOB NOT NULL, PRIMARY KEY (cohort, slot))"
)


class StoredRing:
    """The slots of one cohort's ring that a block of ``n`` new points starting at position
    ``first`` touches, loaded up front (so the ensemble may use them on another thread) and
    written back by ``flush``. A slot never written reads as zeros, as a new ring's do, and so does
    a damaged one (logged): one period of odd residuals, not a watch that fails every cycle."""

    def __init__(
        self, db: sqlite3.Connection, cohort: int, period: int, n_series: int, first: int, n: int
    ):
        self.db, self.cohort, self.period, self.n_series = db, cohort, period, n_series
        wanted = sorted({(first + i) % period for i in range(min(n, period))})
        self.slots: dict[int, np.ndarray] = {}
        for chunk in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            part = wanted[chunk : chunk + 500]
            found = db.execute(
                f"SELECT slot, row FROM detector_rings WHERE cohort=? AND slot IN"
                f" ({','.join('?' * len(part))})",
                (cohort, *part),
            )
            for slot, blob in found:
                row = np.frombuffer(blob, dtype=np.float64) if len(blob) % 8 == 0 else None
                if row is None or len(row) != n_series:  # never fail the cycle on its state
                    log.warning("ring slot %d of cohort %d is damaged; it reads as 0", slot, cohort)
                    continue
                self.slots[slot] = row
        self.dirty: set[int] = set()

    def read(self, first: int, n: int) -> np.ndarray:
        zeros = np.zeros(self.n_series)
        return np.array([self.slots.get((first + i) % self.period, zeros) for i in range(n)])

    def write(self, first: int, rows: np.ndarray) -> None:
        for i, row in enumerate(rows):
            slot = (first + i) % self.period
            self.slots[slot] = np.array(row, dtype=np.float64)
            self.dirty.add(slot)

    def flush(self) -> None:
        """Write the slots this block changed."""
        self.db.executemany(
            "INSERT OR REPLACE INTO detector_rings VALUES (?,?,?)",
            [(self.cohort, slot, self.slots[slot].tobytes()) for slot in sorted(self.dirty)],
        )
        self.dirty.clear()
