"""Seasonal (daily) differencing: how far a point is from the same moment one period ago.

The residual ``x[t] - x[t - period]`` removes a daily (or weekly) cycle without fitting a model;
its EW z-score (with the level's step as scale floor) flags a point that breaks the cycle, e.g.
a flat stretch where a daily peak should be. Before one full period has been seen it scores 0.
State: the last ``period`` values per series (a ``Ring``), so an update costs O(new points).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from lazarus.detect.ewm import Ewm


class Rows(Protocol):
    """Where the last ``span`` rows are kept: row ``pos`` (counted from the first) in slot
    ``pos % span``, so a row ``span`` back is the one the new row overwrites."""

    def take(self, positions: np.ndarray) -> np.ndarray: ...

    def read(self, first: int, n: int) -> np.ndarray: ...

    def write(self, first: int, rows: np.ndarray) -> None: ...


@runtime_checkable
class Ringed(Protocol):
    """A detector whose state is mostly a ring of past rows (this view, ``esd``): the watch
    keeps that ring in the store (``rings.StoredRing``) instead of in the pickled state."""

    ring: Rows | None
    ring_span: int
    ring_fill: float

    def ahead(self, n: int) -> Iterable[int]: ...


class Ring:
    """The rows in memory; a slot never written reads as ``fill``."""

    def __init__(self, span: int, n_series: int, fill: float = 0.0):
        self.slots = np.full((span, n_series), fill)

    def take(self, positions: np.ndarray) -> np.ndarray:
        return self.slots[positions % len(self.slots)]

    def read(self, first: int, n: int) -> np.ndarray:
        return self.take(first + np.arange(n))

    def write(self, first: int, rows: np.ndarray) -> None:
        self.slots[(first + np.arange(len(rows))) % len(self.slots)] = rows


def carried_ring(rows: np.ndarray, start: int, first: int, fill: float) -> Ring:
    """The ring an older release pickled as an array (its oldest row at ``start``), with those
    rows at positions ``first``, ``first + 1``, ... (what ``__setstate__`` of a ringed view
    loads)."""
    ring = Ring(len(rows), rows.shape[1], fill)
    if len(rows):
        ring.write(first, np.roll(rows, -start, axis=0))
    return ring


class Seasonal:
    ring_fill = 0.0

    def __init__(self, n_series: int, period: int, span: float):
        self.period = int(period)
        self.ring: Rows | None = Ring(self.period, n_series)
        self.seen = 0
        self.ewm = Ewm(n_series, span)

    def __setstate__(self, state: dict) -> None:
        """A state pickled when the ring was an array (``history``, its oldest row at ``start``)
        carries its rows into a ``Ring``, so an upgrade does not compare a period with zeros."""
        history, start = state.pop("history", None), state.pop("start", 0)
        self.__dict__.update(state)
        if history is not None:
            self.ring = carried_ring(history, start, self.seen - self.period, self.ring_fill)

    @property
    def ring_span(self) -> int:
        return self.period

    def ahead(self, n: int) -> range:
        """The ring positions an update of ``n`` rows reads (the rows one period back)."""
        return range(self.seen, self.seen + min(n, self.period))

    def update(self, rows: np.ndarray, valid: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Gap-free ``(time x series)`` rows -> |z| of the seasonal residual."""
        p, n = self.period, len(rows)
        if p <= 0:
            return np.zeros(rows.shape)
        if self.ring is None:
            raise RuntimeError("the seasonal ring is not attached")
        # The value one period before row t: the ring for t < p, else rows[t - p].
        head = min(n, p)
        residual = np.empty(rows.shape)
        np.subtract(rows[:head], self.ring.read(self.seen, head), out=residual[:head])
        np.subtract(rows[head:], rows[: n - head], out=residual[head:])
        if self.seen < p:
            valid = valid & (self.seen + np.arange(n) >= p)[:, None]
        z, _ = self.ewm.update(residual, valid, floor)
        self.ring.write(self.seen + n - head, rows[n - head :])
        self.seen += n
        return z
