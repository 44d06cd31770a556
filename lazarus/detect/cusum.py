"""CUSUM change points: a persistent change in level or in variance, and the rate of change.

Each point is standardised against an EW mean and scale learnt *before* it (as ``ewm``); three
one-sided cumulative sums grow while the change lasts and shrink otherwise: level up
(``z - drift``), level down (``-z - drift``) and variance up (the log-likelihood ratio of a
doubled standard deviation). The score is the
largest sum over ``limit`` (capped at 1). When it reaches 1 the sums restart, and the mean and
spread are taken afresh from the next ``RELEARN`` points, so a change that persists is reported
once: an EW mean left to learn the new level would keep the sums climbing and fire again every
few dozen points. Small steady changes that a point-wise z misses add up here. State: O(series).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.clean import Carry, as_block
from lazarus.detect.ewm import Ewm

# Log-likelihood ratio of "the standard deviation doubled": z^2 (1 - 1/4) / 2 - ln 2.
VARIANCE_GAIN, VARIANCE_COST = 0.375, float(np.log(2.0))
SETTLE = 400  # points before the scale is trusted enough to accumulate evidence
RELEARN = 50  # points after a change whose mean and spread are the new normal


class Cusum:
    def __init__(self, n_series: int, span: float = 500, drift: float = 0.5, limit: float = 10.0):
        self.carry = Carry(n_series)
        self.ewm = Ewm(n_series, span)
        self.drift, self.limit = drift, limit
        self.sums = np.zeros((3, n_series))
        self._init_relearning(n_series)

    def _init_relearning(self, n_series: int) -> None:
        self.relearn = np.zeros(n_series, dtype=np.int64)  # points left to sample after a change
        self.sample = np.zeros((3, n_series))  # their count, sum and sum of squares

    def __setstate__(self, state: dict) -> None:
        """State pickled before a change was followed by relearning starts without one."""
        self.__dict__.update(state)
        if "relearn" not in state:
            self._init_relearning(self.sums.shape[1])

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (1 = a change point)."""
        rows, valid = self.carry.fill(as_block(values).T)
        out = np.zeros(rows.shape)
        for t in range(len(rows)):
            x, ok = rows[t], valid[t]
            z = np.where(ok, (x - self.ewm.mean) / self._scale(), 0.0)
            step = np.stack(
                [z - self.drift, -z - self.drift, VARIANCE_GAIN * z * z - VARIANCE_COST]
            )
            self.sums = np.where(ok, np.maximum(self.sums + step, 0.0), self.sums)
            out[t] = np.where(ok, np.minimum(self.sums.max(axis=0) / self.limit, 1.0), 0.0)
            self.ewm.update(rows[t : t + 1], valid[t : t + 1])
            self._relearn(x, ok)
            changed = out[t] >= 1.0
            self.sums[:, changed] = 0.0
            self.relearn[changed] = RELEARN
        return out.T

    def _scale(self) -> np.ndarray:
        """The scale a new point is judged by; inf (no evidence) while settling or relearning."""
        mean = self.ewm.mean
        scale = np.sqrt(self.ewm.var / np.maximum(self.ewm.weight, 1e-12))
        floor = 1e-9 + 1e-6 * np.abs(mean)
        trusted = (self.ewm.count >= SETTLE) & (self.relearn == 0)
        return np.where(trusted, np.maximum(scale, floor), np.inf)

    def _relearn(self, x: np.ndarray, ok: np.ndarray) -> None:
        """Sample the points after a change; after ``RELEARN`` of them, their mean and spread
        become the statistics' (an EW mean would take hundreds of points to get there)."""
        taking = ok & (self.relearn > 0)
        if not taking.any():
            return
        self.sample[:, taking] += np.stack([np.ones_like(x), x, x * x])[:, taking]
        self.relearn[taking] -= 1
        done = np.flatnonzero(taking & (self.relearn == 0))
        if len(done):
            n, total, squares = self.sample[:, done]
            mean = total / n
            self.ewm.mean[done] = mean
            self.ewm.var[done] = np.maximum(squares / n - mean * mean, 0.0) * self.ewm.weight[done]
            self.sample[:, done] = 0.0


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
