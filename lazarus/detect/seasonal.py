"""Seasonal (daily) differencing: how far a point is from the same moment one period ago.

The residual ``x[t] - x[t - period]`` removes a daily (or weekly) cycle without fitting a model;
its EW z-score (with the level's step as scale floor) flags a point that breaks the cycle, e.g.
a flat stretch where a daily peak should be. Before one full period has been seen it scores 0.
State: the last ``period`` values per series (a ring), so an update costs O(new points).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.ewm import Ewm


class Seasonal:
    start = 0  # ring position of the oldest row of ``history`` (0: oldest first, as pickled before)

    def __init__(self, n_series: int, period: int, span: float):
        self.period = int(period)
        self.history = np.zeros((self.period, n_series))  # the last period, as a ring
        self.seen = 0
        self.ewm = Ewm(n_series, span)

    def update(self, rows: np.ndarray, valid: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Gap-free ``(time x series)`` rows -> |z| of the seasonal residual."""
        p, n = self.period, len(rows)
        if p <= 0:
            return np.zeros(rows.shape)
        # The value one period before row t: the ring for t < p (oldest first), else rows[t - p].
        head = min(n, p)
        wrap = min(head, p - self.start)
        residual = np.empty(rows.shape)
        np.subtract(rows[:wrap], self.history[self.start : self.start + wrap], out=residual[:wrap])
        np.subtract(rows[wrap:head], self.history[: head - wrap], out=residual[wrap:head])
        np.subtract(rows[head:], rows[: n - head], out=residual[head:])
        if self.seen < p:
            valid = valid & (self.seen + np.arange(n) >= p)[:, None]
        z, _ = self.ewm.update(residual, valid, floor)
        # Overwrite the oldest rows with the newest.
        if n >= p:
            self.history, self.start = rows[n - p :].copy(), 0
        else:
            self.history[self.start : self.start + wrap] = rows[:wrap]
            self.history[: n - wrap] = rows[wrap:]
            self.start = (self.start + n) % p
        self.seen += n
        return z
