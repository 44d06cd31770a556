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
    def __init__(self, n_series: int, period: int, span: float):
        self.period = int(period)
        self.history = np.zeros((self.period, n_series))
        self.seen = 0
        self.ewm = Ewm(n_series, span)

    def update(self, rows: np.ndarray, valid: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Gap-free ``(time x series)`` rows -> |z| of the seasonal residual."""
        p = self.period
        if p <= 0:
            return np.zeros(rows.shape)
        full = np.vstack([self.history, rows])
        residual = full[p:] - full[: len(rows)]
        ready = (self.seen + np.arange(len(rows)) >= p)[:, None]
        z, _ = self.ewm.update(residual, valid & ready, floor)
        self.history = full[len(full) - p :]
        self.seen += len(rows)
        return z
