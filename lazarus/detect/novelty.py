"""Novelty of a series' recent shape: how far its last stretch is from every earlier one.

The ensemble's views ask whether a *value* is surprising (its level, a short mean, the seasonal
residual, a record). An episode can be made of ordinary values in a sequence never seen before:
a cycle that loses its shape, a burst of a new form. A nearest-neighbour view sees that, as
KNN-CAD and ARTime (the leader on NAB: "no known category matches this window") do on NAB.

Per point ``t``, causally (only points up to ``t``):

- the feature is the mean of each of the last ``width`` blocks of ``step`` points, a coarse
  picture of the last ``width x step`` points (the means take the noise out of the shape);
- its distance to the nearest earlier feature that shares none of its block means (lest it
  find itself), among those that end within ``memory`` points (the bounded set of known
  shapes), is the RMS difference over the range (max - min) of the series so far: scale free,
  and no whole-file min/max is needed;
- that distance is ranked against the series' own history of such distances
  (``calibrate.TailRank``), so the novelty is a surprise on the same scale as the ensemble's.

A repeating pattern finds itself in the past (distance ~0, novelty ~0); a new shape does not.
The cost is O(points x memory) array work, a loop over the ``memory`` lags.
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.calibrate import TailRank
from lazarus.detect.clean import Carry

WIDTH = 4  # blocks in a feature
STEP = 6  # points per block
SPAN = WIDTH * STEP  # points a feature covers
MEMORY = 4000  # points back that a known shape is looked for
# Distances are a fraction of the range; TailRank's log bins span 0.01..1000, so 1e-5..1 of it.
SCALE = 1000.0


def novelty(
    values: np.ndarray, width: int = WIDTH, step: int = STEP, memory: int = MEMORY
) -> np.ndarray:
    """Surprise in [0, ~1] of each point's recent shape; 0 at gaps and before a feature exists.

    ``values`` is one series (1-D, non-finite = gap: the last value carries over, as in
    ``clean``). Appending points never changes the scores of earlier ones.
    """
    if width < 1 or step < 1:
        raise ValueError(f"need width, step >= 1, got {width}, {step}")
    raw = np.asarray(values, dtype=np.float64)
    filled, valid = Carry(1).fill(raw[:, None])
    seen = np.logical_or.accumulate(valid[:, 0])  # false only before the first value
    if not seen.any():
        return np.zeros(len(raw))
    # Shift to the first value: the distances are the same, the sums keep their precision.
    x = np.where(seen, filled[:, 0] - filled[np.argmax(seen), 0], 0.0)
    distance = np.sqrt(_nearest(_block_means(x, step), width, step, memory) / width)
    high = np.maximum.accumulate(np.where(seen, x, -np.inf))
    low = np.minimum.accumulate(np.where(seen, x, np.inf))
    spread = high - low
    ok = valid[:, 0] & np.isfinite(distance) & (spread > 0)
    relative = np.zeros(len(x))
    np.divide(distance, spread, out=relative, where=ok)
    return TailRank(1).update((relative * SCALE)[:, None], ok[:, None])[:, 0]


def _block_means(x: np.ndarray, step: int) -> np.ndarray:
    """Mean of the ``step`` points ending at each point (the first point stands in before it)."""
    sums = np.cumsum(np.concatenate([np.full(step, x[0]), x]))
    return (sums[step:] - sums[:-step]) / step


def _nearest(means: np.ndarray, width: int, step: int, memory: int) -> np.ndarray:
    """Per point, the smallest squared distance between its feature and an earlier one that
    shares none of its block means and ends at most ``memory`` points before (inf if none)."""
    n = len(means)
    span = (width - 1) * step + 1
    best = np.full(n, np.inf)
    for lag in range(span, min(memory, n - span) + 1):
        diff = means[lag:] - means[:-lag]
        found = _strided_sum(diff * diff, width, step)
        np.minimum(best[lag:], found, out=best[lag:])
    return best


def _strided_sum(values: np.ndarray, width: int, step: int) -> np.ndarray:
    """``out[i] = sum(values[i - k * step] for k < width)``; inf where ``i < (width - 1) step``."""
    n = len(values)
    pad = -n % step
    rows = np.concatenate([values, np.zeros(pad)]).reshape(-1, step)
    sums = np.concatenate([np.zeros((1, step)), np.cumsum(rows, axis=0)])
    out = np.full(n + pad, np.inf)
    out[(width - 1) * step :] = (sums[width:] - sums[:-width]).ravel()
    return np.maximum(out[:n], 0.0)  # a cumulative difference can round below 0
