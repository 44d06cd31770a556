"""EWMA/EWMV z-score with a robust scale floor, and its moving-average smoothing.

``z = |x - mean| / max(std, floor)`` where mean and variance are exponentially weighted over
``span`` points and both come from data *before* the point (causal). The floor is the EW mean
absolute step ``|x[t] - x[t-1]|``: a quantised or mostly flat metric (plain MAD and std collapse
to 0 there) still gets a scale of "one typical step", so one tick of change is not infinite
(and a series that never moved gets a millionth of its level).
State is O(series): a watch cycle costs O(new points).
"""

from __future__ import annotations

import numpy as np

TINY = 1e-9
SETTLE = 10  # points before a scale is trusted: z from 2 or 3 points is noise
RELATIVE = 1e-6  # scale floor relative to the level: a series that never moved still has one


class Ewm:
    """Per-series EW mean, variance, mean absolute step and last value."""

    def __init__(self, n_series: int, span: float):
        self.alpha = 1.0 / max(float(span), 1.0)
        self.mean = np.zeros(n_series)
        self.var = np.zeros(n_series)
        self.step = np.zeros(n_series)
        self.last = np.zeros(n_series)
        self.count = np.zeros(n_series, dtype=np.int64)
        self.weight = np.zeros(n_series)  # 1 - (1 - alpha)^updates: undoes the start-at-0 bias

    def update(
        self, rows: np.ndarray, valid: np.ndarray, floor: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(time x series)`` gap-free rows -> (|z| per point, the step floor each point saw).

        |z| is 0 at gaps and at a series' first ``SETTLE`` values (no trusted scale yet).

        ``floor`` (time x series) replaces the own step floor, e.g. a seasonal residual borrows
        the level's step so both speak in the same units.
        """
        z = np.zeros(rows.shape)
        steps = np.empty(rows.shape)
        whole = valid.all(axis=1)
        for t in range(len(rows)):
            x, ok = rows[t], valid[t]
            steps[t] = self.step / np.maximum(self.weight, TINY)
            limit = steps[t] if floor is None else floor[t]
            if whole[t] and self.ready:
                self._fast(x, limit, z[t])
            elif self.ready:  # a few gaps: update all, then undo the gaps
                gaps = np.flatnonzero(~ok)
                states = (self.mean, self.var, self.step, self.last, self.count, self.weight)
                kept = [s[gaps] for s in states]
                self._fast(x, limit, z[t])
                for state, value in zip(states, kept, strict=True):
                    state[gaps] = value
                z[t, gaps] = 0.0
            else:
                self._masked(x, ok, limit, z[t])
        return z, steps

    @property
    def ready(self) -> bool:
        """Every series has a value: the common case, served without masks."""
        return bool(len(self.count)) and bool(self.count.min() >= SETTLE)

    def _fast(self, x: np.ndarray, limit: np.ndarray, z: np.ndarray) -> None:
        a = self.alpha
        d = x - self.mean
        scale = np.sqrt(self.var / np.maximum(self.weight, TINY))
        np.maximum(scale, limit, out=scale)
        np.maximum(scale, RELATIVE * np.abs(self.mean) + TINY, out=scale)
        np.divide(np.abs(d), scale, out=z)
        jump = np.abs(x - self.last)
        self.mean += a * d
        d *= d
        d *= a
        self.var += d
        self.var *= 1.0 - a
        jump -= self.step
        jump *= a
        self.step += jump
        self.last[:] = x
        self.count += 1
        self.weight += a * (1.0 - self.weight)

    def _masked(self, x: np.ndarray, ok: np.ndarray, limit: np.ndarray, z: np.ndarray) -> None:
        a = self.alpha
        mean, var, step, last, count = self.mean, self.var, self.step, self.last, self.count
        started = count > 0
        scale = np.maximum(np.sqrt(var / np.maximum(self.weight, TINY)), limit)
        z[:] = np.where(
            ok & (count >= SETTLE),
            np.abs(x - mean) / np.maximum(scale, RELATIVE * np.abs(mean) + TINY),
            0.0,
        )
        d = np.where(started, x - mean, 0.0)
        jump = np.where(started, np.abs(x - last), 0.0)
        self.mean = np.where(ok, np.where(started, mean + a * d, x), mean)
        self.var = np.where(ok, (1.0 - a) * (var + a * d * d), var)
        self.step = np.where(ok, step + a * (jump - step), step)
        self.last = np.where(ok, x, last)
        self.weight = np.where(ok & started, self.weight + a * (1.0 - self.weight), self.weight)
        self.count = count + ok


class MovingMean:
    """Mean of the last ``width`` values per series, carried across calls."""

    def __init__(self, n_series: int, width: int):
        self.tail = np.zeros((max(width - 1, 0), n_series))
        self.filled = 0
        self.width = width

    def update(self, rows: np.ndarray) -> np.ndarray:
        k = len(self.tail)
        full = np.vstack([self.tail, rows])
        sums = np.vstack([np.zeros((1, full.shape[1])), np.cumsum(full, axis=0)])
        j = np.arange(len(rows))
        n = np.minimum(self.filled + j + 1, self.width)
        out = (sums[k + j + 1] - sums[k + j + 1 - n]) / n[:, None]
        if k:
            self.tail = full[len(full) - k :]
        self.filled = min(self.filled + len(rows), k)
        return out
