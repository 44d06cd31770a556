"""Turning raw series values into something every detector can trust.

Documented behaviour (the same in every detector):

- Input is a ``(series x time)`` block; anything that is not a finite number (NaN, +-inf,
  ``None``, a string that does not parse) is a *gap*, and so is a magnitude past ``LARGEST``,
  whose square or difference would overflow inside a detector (``1e308`` is no measurement).
- A gap carries the series' last finite value forward for the level statistics, scores 0 and
  never updates a detector's learnt state; the absence detector is the one that reports gaps.
- Before a series' first finite value its points are gaps too.

Detectors work on the transposed ``(time x series)`` layout so one time step is a contiguous
row (vectorised over series, cache friendly).
"""

from __future__ import annotations

import numpy as np

LARGEST = 1e150


def as_block(values: object) -> np.ndarray:
    """A 2-D float64 ``(series x time)`` array; non-numbers become NaN, 1-D is one series."""
    try:
        block = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        block = np.vectorize(_to_float, otypes=[np.float64])(np.asarray(values, dtype=object))
    if block.ndim == 1:
        block = block[None, :]
    if block.ndim != 2:
        raise ValueError(f"expected a (series x time) block, got shape {block.shape}")
    with np.errstate(invalid="ignore"):
        huge = np.abs(block) > LARGEST
    if huge.any():
        block = np.where(huge, np.nan, block)
    return block


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


class Carry:
    """Per-series last finite value, so gaps can be bridged across calls."""

    def __init__(self, n_series: int):
        self.last = np.full(n_series, np.nan)

    def fill(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(time x series)`` rows -> (gap-free rows, mask of points that were real values).

        Gaps are rare in practice, so only the time steps that hold one are touched (a copy,
        then a forward fill step by step over just those rows)."""
        valid = np.isfinite(rows)
        if valid.all():
            filled = rows
        else:
            filled = np.array(rows, order="C")
            previous = np.where(np.isfinite(self.last), self.last, 0.0)
            for t in np.flatnonzero(~valid.all(axis=1)):
                gaps = np.flatnonzero(~valid[t])
                filled[t, gaps] = previous[gaps] if t == 0 else filled[t - 1, gaps]
        if len(rows):
            self.last = np.where(valid.any(axis=0), filled[-1], self.last)
        return filled, valid


NARROW = 64  # fewer series than this: numpy's own accumulate is faster than a loop over rows


def running(ufunc: np.ufunc, rows: np.ndarray) -> np.ndarray:
    """``ufunc.accumulate(rows, axis=0)`` in place, one contiguous row at a time when wide.

    The same values in the same order as numpy's accumulate (so bit for bit the same result),
    but numpy walks a ``(time x series)`` block column by column there, ~8x slower at 10,000
    series than this loop over rows (for a few series numpy's walk is the faster one).
    """
    if rows.ndim < 2 or rows.shape[1] < NARROW:
        return ufunc.accumulate(rows, axis=0, out=rows)
    for t in range(1, len(rows)):
        ufunc(rows[t - 1], rows[t], out=rows[t])
    return rows


TILE = 512  # series per tile of a transposing copy: 64 steps x 512 fits in L2 cache


def transpose_into(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``dst[...] = src.T`` in tiles along the longer (series) axis: a plain transposing copy
    of a 10,000-series block misses the cache on nearly every element (~5x slower)."""
    if src.shape[0] >= src.shape[1]:
        for s in range(0, src.shape[0], TILE):
            dst[:, s : s + TILE] = src[s : s + TILE].T
    else:
        for s in range(0, src.shape[1], TILE):
            dst[s : s + TILE] = src[:, s : s + TILE].T
    return dst
