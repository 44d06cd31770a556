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

from lazarus.detect.clean import running

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
        z = np.empty(rows.shape)
        steps = np.empty(rows.shape) if floor is None else floor
        # The gaps of each step, found once: gap_series[bounds[t] : bounds[t + 1]].
        gap_steps, gap_series = np.nonzero(~valid)
        bounds = np.searchsorted(gap_steps, np.arange(len(rows) + 1))
        ready = self.ready  # once ready, always ready: counts only grow
        for t in range(len(rows)):
            x, ok = rows[t], valid[t]
            weight = np.maximum(self.weight, TINY)
            if floor is None:
                np.divide(self.step, weight, out=steps[t])
            ready = ready or self.ready
            if bounds[t] == bounds[t + 1] and ready:
                self._fast(x, steps[t], z[t], weight)
            elif ready:  # a few gaps: update all, then undo the gaps
                gaps = gap_series[bounds[t] : bounds[t + 1]]
                states = (self.mean, self.var, self.step, self.last, self.count, self.weight)
                kept = [s[gaps] for s in states]
                self._fast(x, steps[t], z[t], weight)
                for state, value in zip(states, kept, strict=True):
                    state[gaps] = value
                z[t, gaps] = 0.0
            else:
                self._masked(x, ok, steps[t], z[t])
        return z, steps

    @property
    def ready(self) -> bool:
        """Every series has a value: the common case, served without masks."""
        return bool(len(self.count)) and bool(self.count.min() >= SETTLE)

    def _fast(self, x: np.ndarray, limit: np.ndarray, z: np.ndarray, weight: np.ndarray) -> None:
        """One step of every series, in place (``weight`` is the bias weight floored at TINY)."""
        a = self.alpha
        d = x - self.mean
        scale = np.divide(self.var, weight)
        np.sqrt(scale, out=scale)
        np.maximum(scale, limit, out=scale)
        work = np.abs(self.mean)
        work *= RELATIVE
        work += TINY
        np.maximum(scale, work, out=scale)
        np.abs(d, out=work)
        np.divide(work, scale, out=z)
        jump = np.subtract(x, self.last, out=scale)
        np.abs(jump, out=jump)
        np.multiply(d, a, out=work)
        self.mean += work
        d *= d
        d *= a
        self.var += d
        self.var *= 1.0 - a
        jump -= self.step
        jump *= a
        self.step += jump
        self.last[:] = x
        self.count += 1
        np.subtract(1.0, self.weight, out=work)
        work *= a
        self.weight += work

    def _masked(self, x: np.ndarray, ok: np.ndarray, limit: np.ndarray, z: np.ndarray) -> None:
        if not ok.any():  # nothing to learn (e.g. a seasonal residual's first period)
            z[:] = 0.0
            return
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
        # Differences of one running sum over the carried tail and the new rows.
        k, t = len(self.tail), len(rows)
        sums = np.empty((k + t + 1, rows.shape[1]))
        sums[0] = 0.0
        full = sums[1:]
        full[:k] = self.tail
        full[k:] = rows
        if k:
            self.tail = full[t:].copy()
        running(np.add, full)
        if self.filled == k:  # steady state: every mean spans the full width
            out = np.subtract(sums[k + 1 :], sums[:t])
            out /= self.width
        else:
            j = np.arange(t)
            n = np.minimum(self.filled + j + 1, self.width)
            out = (sums[k + j + 1] - sums[k + j + 1 - n]) / n[:, None]
        self.filled = min(self.filled + t, k)
        return out


class RunningMean:
    """Mean of the last ``width`` values per series for a long window: a ring of the values
    (float32, as the evidence it averages) and their running sum, so a point costs O(1) and the
    state is the ring alone (``MovingMean`` re-sums its carried tail on every update)."""

    def __init__(self, n_series: int, width: int):
        self.ring = np.zeros((width, n_series), dtype=np.float32)
        self.total = np.zeros(n_series)
        self.seen = 0

    def update(self, rows: np.ndarray) -> np.ndarray:
        width = len(self.ring)
        out = np.empty(rows.shape)
        # In parts of at most ``width`` rows: the value a width back is then always in the ring.
        for start in range(0, len(rows), width):
            part = rows[start : start + width].astype(np.float32)
            slots = (self.seen + np.arange(len(part))) % width
            sums = part - self.ring[slots].astype(np.float64)
            sums[0] += self.total  # first, so any slicing adds in the same order
            running(np.add, sums)
            self.total = sums[-1].copy()
            self.ring[slots] = part
            counts = np.minimum(self.seen + np.arange(1, len(part) + 1), width)
            np.divide(sums, counts[:, None], out=out[start : start + len(part)])
            self.seen += len(part)
        return out
