"""CUSUM change points: a persistent change in level or in variance, and the rate of change.

Each point is standardised against an EW mean and scale learnt *before* it (as ``ewm``); three
one-sided cumulative sums grow while the change lasts and shrink otherwise: level up
(``z - drift``), level down (``-z - drift``) and variance up (the log-likelihood ratio of a
doubled standard deviation). The score is the
largest sum over ``limit`` (capped at 1); when it reaches 1 the sums restart, so a change that
persists is reported once and the statistics then learn the new normal. Small steady changes
that a point-wise z misses add up here. State: O(series).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.clean import Carry, as_block
from lazarus.detect.ewm import Ewm

# Log-likelihood ratio of "the standard deviation doubled": z^2 (1 - 1/4) / 2 - ln 2.
VARIANCE_GAIN, VARIANCE_COST = 0.375, float(np.log(2.0))
SETTLE = 400  # points before the scale is trusted enough to accumulate evidence


class Cusum:
    def __init__(self, n_series: int, span: float = 500, drift: float = 0.5, limit: float = 10.0):
        self.carry = Carry(n_series)
        self.ewm = Ewm(n_series, span)
        self.drift, self.limit = drift, limit
        self.sums = np.zeros((3, n_series))

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (1 = a change point)."""
        rows, valid = self.carry.fill(as_block(values).T)
        mean_before, scale_before = self._before(rows, valid)
        out = np.zeros(rows.shape)
        for t in range(len(rows)):
            z = np.where(valid[t], (rows[t] - mean_before[t]) / scale_before[t], 0.0)
            step = np.stack(
                [z - self.drift, -z - self.drift, VARIANCE_GAIN * z * z - VARIANCE_COST]
            )
            self.sums = np.where(valid[t], np.maximum(self.sums + step, 0.0), self.sums)
            out[t] = np.where(valid[t], np.minimum(self.sums.max(axis=0) / self.limit, 1.0), 0.0)
            self.sums[:, out[t] >= 1.0] = 0.0
        return out.T

    def _before(self, rows: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EW mean and scale each point is judged against (learnt from earlier points)."""
        means = np.empty(rows.shape)
        scales = np.empty(rows.shape)
        for t in range(len(rows)):
            means[t] = self.ewm.mean
            ready = self.ewm.count >= SETTLE
            scale = np.sqrt(self.ewm.var / np.maximum(self.ewm.weight, 1e-12))
            scales[t] = np.where(ready, np.maximum(scale, 1e-9 + 1e-6 * np.abs(means[t])), np.inf)
            self.ewm.update(rows[t : t + 1], valid[t : t + 1])
        return means, scales


class RateOfChange:
    """|z| of the step ``x[t] - x[t-1]`` against the series' usual steps (a sudden jump or drop
    that a slow level statistic would average away), as a score ``z / (z + limit)``."""

    def __init__(self, n_series: int, span: float = 500, limit: float = 6.0):
        self.carry = Carry(n_series)
        self.previous = np.zeros(n_series)
        self.seen = np.zeros(n_series, dtype=bool)  # a real value has been seen
        self.ewm = Ewm(n_series, span)
        self.limit = limit

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (0.5 at ``limit``)."""
        rows, valid = self.carry.fill(as_block(values).T)
        seen = np.logical_or.accumulate(np.vstack([self.seen, valid]), axis=0)
        steps = rows - np.vstack([self.previous, rows[:-1]])
        ok = valid & seen[:-1]  # a step needs a real value before it
        z, _ = self.ewm.update(np.where(ok, steps, 0.0), ok)
        if len(rows):
            self.previous, self.seen = rows[-1], seen[-1]
        return (z / (z + self.limit)).T
