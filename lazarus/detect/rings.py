"""Rings of past rows (a period or more of points per series) kept row by row in the store.

The seasonal view keeps the last period of points per series, ESD the last few periods of its
detrended values. A one-day period at a 15 s interval is 5,760 rows: for 1,000 series 46 MB,
nearly all of a cohort's state. Pickled with the cohort, every cycle read and wrote all of it
(2.1 s a cycle for 1,000 series after a day, bench/detect_extras.py). Here each slot (one row: a
float64 per series of the cohort) is a row of ``detector_ring_slots``, keyed by cohort, ring
name and slot; a cycle reads the slots its new points look back at and writes back only the
ones they overwrite, inside the cycle's transaction. Row ``pos`` (counted from the first row the
ring was given) lives in slot ``pos % span``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

from lazarus.detect.seasonal import Ring, Ringed

log = logging.getLogger(__name__)

BATCH = 500  # slots per query (SQLite's limit on bound parameters is higher, but finite)


class StoredRing:
    """One ring of one cohort. Slots are loaded when first read, or all at once by ``load``
    (the ensemble may read its ring on another thread, which must not touch the connection);
    ``flush`` writes the slots changed since. A slot never written reads as ``fill``, as a new
    in-memory ring's does, and so does a damaged one (logged): a period of odd values, not a
    watch that fails every cycle."""

    def __init__(
        self,
        db: sqlite3.Connection,
        cohort: int,
        ring: str,
        span: int,
        n_series: int,
        fill: float = 0.0,
    ):
        self.db, self.key, self.span, self.n_series = db, (cohort, ring), span, n_series
        self.fill = np.full(n_series, fill)
        self.slots: dict[int, np.ndarray] = {}
        self.dirty: set[int] = set()

    def load(self, positions: Iterable[int]) -> None:
        """Read the slots of ``positions`` that are not loaded yet."""
        wanted = sorted({p % self.span for p in positions} - self.slots.keys())
        for start in range(0, len(wanted), BATCH):
            part = wanted[start : start + BATCH]
            found = self.db.execute(
                "SELECT slot, row FROM detector_ring_slots WHERE cohort=? AND ring=? AND slot IN"
                f" ({','.join('?' * len(part))})",
                (*self.key, *part),
            )
            for slot, blob in found:
                self.slots[slot] = self._row(slot, blob)
            for slot in part:
                self.slots.setdefault(slot, self.fill)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The rows at ``positions`` (``len x n_series``)."""
        self.load(int(p) for p in positions)
        return np.array([self.slots[int(p) % self.span] for p in positions]).reshape(
            len(positions), self.n_series
        )

    def read(self, first: int, n: int) -> np.ndarray:
        return self.take(first + np.arange(n))

    def write(self, first: int, rows: np.ndarray) -> None:
        for i, row in enumerate(rows):
            slot = (first + i) % self.span
            self.slots[slot] = np.array(row, dtype=np.float64)
            self.dirty.add(slot)

    def adopt(self, rows: Ring) -> None:
        """Take over the slots of an in-memory ring that hold anything but ``fill``: none for a
        cohort made this cycle, the whole past for one pickled before the store kept rings."""
        fill = (rows.slots == self.fill) | (np.isnan(rows.slots) & np.isnan(self.fill))
        for slot in np.flatnonzero(~fill.all(axis=1)):
            self.write(int(slot), rows.slots[slot : slot + 1])

    def flush(self) -> None:
        """Write the slots changed since the last flush."""
        self.db.executemany(
            "INSERT OR REPLACE INTO detector_ring_slots VALUES (?,?,?,?)",
            [(*self.key, slot, self.slots[slot].tobytes()) for slot in sorted(self.dirty)],
        )
        self.dirty.clear()

    def _row(self, slot: int, blob: bytes) -> np.ndarray:
        row = np.frombuffer(blob, dtype=np.float64) if len(blob) % 8 == 0 else None
        if row is None or len(row) != self.n_series:
            log.warning("ring %s slot %d is damaged; it reads as empty", self.key, slot)
            return self.fill
        return row


@contextmanager
def stored_rings(
    db: sqlite3.Connection, cohort: int, ringed: dict[str, Ringed], n_series: int, width: int
) -> Iterator[None]:
    """Give each ringed detector its ring from the store for one update of ``width`` rows, with
    the slots it will read loaded up front; then write back what changed and detach, so the
    pickled state never holds a ring. On an error nothing is written (the cycle rolls back)."""
    rings: dict[str, StoredRing] = {}
    for name, detector in ringed.items():
        ring = StoredRing(db, cohort, name, detector.ring_span, n_series, detector.ring_fill)
        if isinstance(detector.ring, Ring):
            ring.adopt(detector.ring)
        ring.load(detector.ahead(width))
        detector.ring = rings[name] = ring
    yield
    for name, detector in ringed.items():
        rings[name].flush()
        detector.ring = None
