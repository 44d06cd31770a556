"""Turn any non-negative anomaly feature into a surprise in [0, ~1] that means the same everywhere.

A feature's raw scale differs per series (a z of 4 is routine on a spiky tweet count, rare on a
CPU gauge), so each value is ranked against the series' own history: with ``k`` past values and
``ge`` of them at least as large, ``surprise = -log10((ge + 1) / (k + 1)) / 4`` (a new record
after 10,000 points is 1.0). The history is a log-binned histogram per series (32 bins a decade
from 0.01 to 1000), so the state is O(bins) and one point costs O(1) to rank. With 16 bins a
decade the say-it-once excesses came in coarse steps and the threshold chosen on some series
fell between steps on others (bench/README.md).

The history fades with a ``memory`` of points (the ensemble's ``span``): each count weighs
``(1 - 1/memory)`` less per point since. The ranks then follow the series' current regime, as
the level statistics do, and a record is worth about the same on a long series as on a short
one (at most ``log10(memory) / 4``), so one threshold fits series whatever their length.

Points are ranked against the histogram as it stood at the start of their block of 64 (blocks
aligned to the series' point count), so batch and point-by-point updates give the same scores;
every score still uses only earlier points.
"""

from __future__ import annotations

import math

import numpy as np

from lazarus.detect.clean import running

LOG_LOW, LOG_HIGH, PER_DECADE = -2, 3, 32
BINS = (LOG_HIGH - LOG_LOW) * PER_DECADE + 2
BLOCK = 64


def bin_of(values: np.ndarray) -> np.ndarray:
    """Histogram bin per value: 0 below 0.01, BINS-1 from 1000 up."""
    logs = np.log(np.clip(values, 1e-12, 1e12, dtype=np.float32))  # ln is ~3x faster than log10
    logs *= PER_DECADE / np.log(10.0)
    logs -= LOG_LOW * PER_DECADE - 1
    return np.clip(logs, 0, BINS - 1).astype(np.int64)


class TailRank:
    """Per-series history of one feature; ``update`` ranks new values against it."""

    def __init__(self, n_series: int, warmup: int = 0, memory: float = math.inf):
        # above[j, s]: how many of series s's values fell in bin BINS-1-j or higher (bins from
        # the top, bins x series, so the cumulative sum runs down contiguous rows), faded.
        self.above = np.zeros((BINS, n_series), dtype=np.float32)
        self.keep = 1.0 - 1.0 / memory  # weight a count keeps per point
        self.columns = np.arange(n_series)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []  # (index, valid) of this block
        self.seen = 0
        self.warmup = warmup

    def update(self, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``(time x series)`` feature values -> surprise per point (0 at gaps / in warm-up)."""
        out = np.empty(rows.shape)
        # Flat position in ``above`` of each value's bin (counted from the top bin down).
        n = len(self.columns)
        index = bin_of(rows)
        index *= -n
        index += (BINS - 1) * n + self.columns
        start = 0
        while start < len(rows):
            stop = min(len(rows), start + BLOCK - self.seen % BLOCK)
            out[start:stop] = self._rank(index[start:stop], valid[start:stop])
            self.pending.append((index[start:stop], valid[start:stop]))
            self.seen += stop - start
            if self.seen % BLOCK == 0:
                self._merge()
            start = stop
        return out

    def _rank(self, index: np.ndarray, valid: np.ndarray) -> np.ndarray:
        k = self.above[-1]
        # Logs of the counts a block looks up, not of the whole histogram: fewer, and no copy.
        surprise = _quarter_log(np.take(self.above, index))
        np.subtract(_quarter_log(k), surprise, out=surprise)
        if k.min(initial=0) < self.warmup:
            return np.where(valid & (k >= self.warmup), surprise, 0.0)
        if not valid.all():
            surprise[~valid] = 0.0
        return surprise

    def _merge(self) -> None:
        if len(self.pending) == 1:
            (index, valid), self.pending = self.pending[0], []
        else:
            index = np.vstack([i for i, _ in self.pending])
            valid = np.vstack([v for _, v in self.pending])
        counts = np.bincount(index.ravel(), minlength=self.above.size)
        if not valid.all():  # gaps are rare: count them, then take them out again
            np.subtract.at(counts, index[~valid], 1)
        if self.keep < 1.0:
            self.above *= np.float32(self.keep ** len(index))
        self.above += running(np.add, counts.astype(np.float32).reshape(self.above.shape))
        self.pending = []

    def __setstate__(self, state: dict) -> None:
        """A history stored before it faded (integer counts) carries over and never fades; the
        log-counts a release kept beside the counts are dropped (computed per lookup now)."""
        state.pop("logs", None)
        self.__dict__.update(state)
        if "keep" not in state:
            self.above = self.above.astype(np.float32)
            self.keep = 1.0
        if len(self.above) != BINS:
            self.above = rebinned(self.above)
            self.pending = []  # a block's bins were taken at the old resolution: drop them


def rebinned(above: np.ndarray) -> np.ndarray:
    """A history kept at another resolution (16 bins a decade before 2026-12-05) at ``BINS``.
    Each new bin counts everything in the old bin that holds its lower edge and above: a value
    is never ranked rarer than the old history says."""
    old = len(above)
    per_decade = (old - 2) // (LOG_HIGH - LOG_LOW)
    new = np.arange(BINS)[::-1]  # from the top, as ``above`` is kept
    holding = np.where(new == 0, 0, (new - 1) * per_decade // PER_DECADE + 1)
    return above[old - 1 - np.minimum(holding, old - 1)].copy()


def _quarter_log(counts: np.ndarray) -> np.ndarray:
    """``log10(counts + 1) / 4`` in float32, in a new array."""
    out = counts + np.float32(1.0)
    np.log10(out, out=out)
    out /= np.float32(4.0)
    return out
