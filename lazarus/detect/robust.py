"""Rolling median/MAD z-score with a robust scale floor.

``z = |x - median| / max(1.4826 MAD, floor)`` over the ``window`` finite values *before* each
point (causal). On a quantised or mostly flat metric more than half of the window holds one
value, so the plain MAD is 0 and one tick of ordinary noise would be an infinite z. The floor is
the scale that white noise with the window's mean absolute step would have
(``sqrt(pi)/2 * mean |x[i] - x[i-1]|``), plus a millionth of |median| for a series that never
moved: one typical step stays a moderate z. The score is ``z / (z + limit)`` (0.5 at ``limit``).

Gaps (NaN, inf, non-numbers) score 0 and are skipped: the window is the last ``window`` finite
values of the series, and a point scores 0 until a full window of them precedes it. State: those
values per series (a ring), so an update costs O(new points x window) and any slicing of the input
gives the same scores.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lazarus.detect.clean import as_block

MAD_TO_SIGMA = 1.4826  # MAD of a normal sample -> its standard deviation
STEP_TO_SIGMA = float(np.sqrt(np.pi) / 2)  # mean |step| of white noise -> its standard deviation
RELATIVE = 1e-6  # floor relative to the level, for a series that never moved
TINY = 1e-12
CHUNK = 1 << 21  # window elements handled at once (16 MB of float64)


def trailing_stats(
    joined: np.ndarray, width: int, with_mad: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(time x series)`` finite rows -> per window ``joined[t : t + width]``, t < len - width:
    (median, scale floor, 1.4826 MAD or None).

    Windows are copied in chunks (bounded memory) and every figure is computed in one fixed
    order per window, so it is bit for bit the same whichever chunk, call or block of series the
    window falls in (a pairwise numpy sum is not: its order depends on the array's shape)."""
    n, series = len(joined) - width, joined.shape[1]
    median = np.empty((n, series))
    mad = np.empty((n, series)) if with_mad else None
    with np.errstate(invalid="ignore", over="ignore"):
        steps = np.abs(np.diff(joined, axis=0))
        total = np.zeros((n, series))
        for k in range(width - 1):  # the window's steps, added one after the other
            total += steps[k : k + n]
        views = sliding_window_view(joined, width, axis=0)  # (n + 1) x series x width
        chunk = max(1, CHUNK // max(series * width, 1))
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            win = np.array(views[start:stop])  # a contiguous copy, reordered in place below
            median[start:stop] = med = middle(win)
            if mad is not None:
                np.subtract(win, med[..., None], out=win)
                mad[start:stop] = MAD_TO_SIGMA * middle(np.abs(win, out=win))
        floor = STEP_TO_SIGMA * total / max(width - 1, 1) + RELATIVE * np.abs(median) + TINY
    return median, floor, mad


def middle(win: np.ndarray) -> np.ndarray:
    """Median over the last axis, partitioning ``win`` in place (no NaN expected)."""
    half = win.shape[-1] // 2
    if win.shape[-1] % 2:
        win.partition(half, axis=-1)
        return win[..., half].copy()
    win.partition((half - 1, half), axis=-1)
    return (win[..., half - 1] + win[..., half]) / 2


def bounded(z: np.ndarray, limit: float) -> np.ndarray:
    """``z / (z + limit)`` in [0, 1]: 1 for an infinite z, 0 for NaN."""
    with np.errstate(invalid="ignore"):
        score = 1.0 - limit / (z + limit)
    return np.nan_to_num(score, nan=0.0)


class RollingMad:
    def __init__(self, n_series: int, window: int = 256, limit: float = 5.0):
        if window < 2:
            raise ValueError("window must be at least 2 points")
        self.window, self.limit = int(window), float(limit)
        self.history = np.zeros((self.window, n_series))  # the last finite values, oldest first
        self.count = np.zeros(n_series, dtype=np.int64)  # finite values seen, capped at window

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (0.5 at ``limit``)."""
        rows = as_block(values).T
        n, w = rows.shape[0], self.window
        valid = np.isfinite(rows)
        counts = valid.sum(axis=0)
        order = None
        if valid.all():
            packed = rows
        else:  # each series' finite values first, in time order; the rest zeroed (never scored)
            order = np.argsort(~valid, axis=0, kind="stable")
            packed = np.take_along_axis(rows, order, axis=0)
            packed[np.arange(n)[:, None] >= counts] = 0.0
        joined = np.vstack([self.history, packed])
        median, floor, mad = trailing_stats(joined, w)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            z = np.abs(packed - median) / np.maximum(mad, floor)
        position = np.arange(n)[:, None]
        ready = (position < counts) & (self.count + position >= w)
        score = np.where(ready, bounded(z, self.limit), 0.0)
        if order is not None:
            out = np.zeros_like(score)
            np.put_along_axis(out, order, score, axis=0)
            score = out
        self.history = np.take_along_axis(joined, counts + np.arange(w)[:, None], axis=0)
        self.count = np.minimum(self.count + counts, w)
        return score.T
