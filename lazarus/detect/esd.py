"""Seasonal decomposition + generalised ESD (Twitter's S-H-ESD), done causally.

For each point: trend ``m`` = median of the ``window`` points before it, detrended ``y = x - m``,
seasonal ``s`` = median of ``y`` at the same phase over the last ``cycles`` periods (the ones
seen so far), residual ``r = y - s`` (``period`` 0: ``r = y``, plain H-ESD). The newest residual
is then tested with Rosner's (1983) generalised ESD over the ``window`` residuals ending at it,
in the robust form of Hochenbaum et al. (2017): up to ``k = max_share * n`` times, remove the
residual farthest from the median, its statistic ``R_i = |r - median| / max(1.4826 MAD, floor)``
against the critical value ``lambda_i`` (from Student's t); the outliers are the first ``k*``
removed, ``k*`` the last ``i`` with ``R_i > lambda_i``. The floor (as ``robust``: the scale of
the trend window's mean step) keeps a quantised metric, whose residual MAD is 0, from calling
every tick an outlier.

Score: if the newest residual is removed at step ``j``, ``q = max(R_i / lambda_i, i >= j)`` and
the score is ``q / (1 + q)``, above 0.5 exactly when the test calls it an outlier; else 0.
Only a residual among the ``k`` largest or ``k`` smallest of its window can be removed (a removed
one is the max or min of what is left), so only those run the test (``esd_scores``).

Gaps (NaN, inf, non-numbers) carry the last value forward (``clean.Carry``) so phases stay
aligned, and score 0. A point scores 0 until a trend window and one period precede it and its
residual window holds ``MIN_POINTS``. State: rings of the last ``window`` values, ``cycles``
periods of ``y`` and ``window - 1`` residuals per series: O(new points x window) per update.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lazarus.detect.clean import Carry, as_block
from lazarus.detect.robust import CHUNK, MAD_TO_SIGMA, trailing_stats
from lazarus.detect.seasonal import Ring, Rows, carried_ring

MIN_POINTS = 32  # residuals before the test is trusted (t with fewer df is too lenient)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile for upper-tail ``p`` in (0.5, 1), Hill (1970, CACM algorithm 396);
    within 1e-6 of the tables (numpy has no t quantile, and scipy is not a dependency)."""
    two_tail = 2.0 * (1.0 - p)
    if df == 1:
        return 1.0 / math.tan(two_tail * math.pi / 2)
    if df == 2:
        return math.sqrt(2.0 / (two_tail * (2.0 - two_tail)) - 2.0)
    a = 1.0 / (df - 0.5)
    b = 48.0 / (a * a)
    c = ((20700.0 * a / b - 98.0) * a - 16.0) * a + 96.36
    d = ((94.5 / (b + c) - 3.0) / b + 1.0) * math.sqrt(a * math.pi / 2) * df
    y = (d * two_tail) ** (2.0 / df)
    if y > 0.05 + a:  # far tail: an expansion about the normal quantile
        x = NormalDist().inv_cdf(two_tail / 2)
        y = x * x
        if df < 5:
            c += 0.3 * (df - 4.5) * (x + 0.6)
        c = (((0.05 * d * x - 5.0) * x - 7.0) * x - 2.0) * x + b + c
        y = (((((0.4 * y + 6.3) * y + 36.0) * y + 94.5) / c - y - 3.0) / b + 1.0) * x
        y = math.expm1(a * y * y)
    else:
        y = ((1.0 / (((df + 6.0) / (df * y) - 0.089 * d - 0.822) * (df + 2.0) * 3.0)
              + 0.5 / (df + 4.0)) * y - 1.0) * (df + 1.0) / (df + 2.0) + 1.0 / y  # fmt: skip
    return math.sqrt(df * y)


@lru_cache(maxsize=256)
def critical_values(n: int, k: int, alpha: float) -> tuple[float, ...]:
    """Rosner's ``lambda_1 .. lambda_k`` for ``n`` points at significance ``alpha``."""
    out = []
    for i in range(1, k + 1):
        t = t_quantile(1.0 - alpha / (2.0 * (n - i + 1)), n - i - 1)
        out.append((n - i) * t / math.sqrt((n - i - 1 + t * t) * (n - i + 1)))
    return tuple(out)


def outlier_budget(n: int, max_share: float) -> int:
    """``k``: how many of ``n`` residuals the test may call outliers."""
    return max(1, int(max_share * n))


def esd_score(window: np.ndarray, floor: float, max_share: float, alpha: float) -> float:
    """The full test on one residual window (newest last, NaN = none) -> the newest's score."""
    if not np.isfinite(window[-1]):
        return 0.0
    alive = window[np.isfinite(window)]
    n = len(alive)
    if n < MIN_POINTS:
        return 0.0
    k = outlier_budget(n, max_share)
    critical = critical_values(n, k, alpha)
    ratios = np.empty(k)
    removed_at = -1
    for i in range(k):
        median = np.median(alive)
        deviation = np.abs(alive - median)
        scale = max(MAD_TO_SIGMA * float(np.median(deviation)), floor)
        worst = int(np.argmax(deviation))
        ratios[i] = deviation[worst] / scale / critical[i]
        if removed_at < 0 and worst == len(alive) - 1:  # the newest is last until removed
            removed_at = i
        alive = np.delete(alive, worst)
    if removed_at < 0:
        return 0.0
    q = float(ratios[removed_at:].max())
    return q / (1.0 + q)


def esd_scores(
    windows: np.ndarray, floors: np.ndarray, max_share: float, alpha: float
) -> np.ndarray:
    """``(m x width)`` residual windows (newest last) -> the newest's score in each; the full test
    runs only where the newest is among the ``k`` largest or smallest (the rest score 0)."""
    newest = windows[:, -1:]
    finite = np.isfinite(windows).sum(axis=1)
    k = np.maximum(1, (max_share * finite).astype(np.int64))
    extreme = ((windows > newest).sum(axis=1) < k) | ((windows < newest).sum(axis=1) < k)
    candidates = extreme & np.isfinite(newest[:, 0]) & (finite >= MIN_POINTS)
    out = np.zeros(len(windows))
    for i in np.flatnonzero(candidates):
        out[i] = esd_score(windows[i], float(floors[i]), max_share, alpha)
    return out


def seasonal_median(stacked: np.ndarray) -> np.ndarray:
    """``(time x cycles x series)`` -> median over the cycles ignoring NaN (NaN where all are)."""
    ordered = np.sort(stacked, axis=1)  # NaN last
    count = np.isfinite(ordered).sum(axis=1, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=1)
    high = np.take_along_axis(ordered, count // 2 - (count == 0), axis=1)  # -(0): a harmless index
    return np.where(count > 0, (low + high) / 2, np.nan)[:, 0]


class SeasonalEsd:
    ring_fill = math.nan

    def __init__(
        self,
        n_series: int,
        period: int,
        window: int = 256,
        max_share: float = 0.02,
        alpha: float = 0.05,
        cycles: int = 3,
    ):
        if window < MIN_POINTS:
            raise ValueError(f"window must be at least {MIN_POINTS} points")
        self.period, self.window, self.cycles = max(int(period), 0), int(window), int(cycles)
        self.max_share, self.alpha = float(max_share), float(alpha)
        self.carry = Carry(n_series)
        self.since = np.zeros(n_series, dtype=np.int64)  # points since the first finite value
        self.values = np.zeros((self.window, n_series))  # the trend window, oldest first
        self.ring: Rows | None = Ring(self.ring_span, n_series, np.nan)  # detrended values
        self.rows = 0  # rows given to the ring so far
        self.residuals = np.full((self.window - 1, n_series), np.nan)

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (above 0.5: an ESD outlier)."""
        rows, valid = self.carry.fill(as_block(values).T)
        n, series = rows.shape
        started = np.logical_or.accumulate(np.vstack([self.since > 0, valid]), axis=0)[1:]
        since = self.since + np.cumsum(started, axis=0) - started  # points before each, since start
        joined = np.vstack([self.values, rows])
        trend, floor, _ = trailing_stats(joined, self.window, with_mad=False)
        detrended = np.where(since >= self.window, rows - trend, np.nan)
        residual = detrended - self._seasonal(detrended)
        tested = np.vstack([self.residuals, residual])
        views = sliding_window_view(tested, self.window, axis=0)  # time x series x window
        score = np.zeros((n, series))
        step = max(1, CHUNK // max(series * self.window, 1))
        for start in range(0, n, step):
            stop = min(start + step, n)
            win = np.array(views[start:stop]).reshape(-1, self.window)
            score[start:stop] = esd_scores(
                win, floor[start:stop].ravel(), self.max_share, self.alpha
            ).reshape(stop - start, series)
        self.values = joined[-self.window :]
        self.residuals = tested[len(tested) - self.window + 1 :]
        self.since = since[-1] + started[-1] if n else self.since
        return np.where(valid, score, 0.0).T

    def __setstate__(self, state: dict) -> None:
        """A state pickled when the ring was an array (``detrended``, its oldest row at
        ``start``) carries its rows into a ``Ring``; they become rows 0..span-1."""
        detrended, start = state.pop("detrended", None), state.pop("start", 0)
        self.__dict__.update(state)
        if detrended is not None:
            self.ring = carried_ring(detrended, start, 0, self.ring_fill)
            self.rows = len(detrended)

    @property
    def ring_span(self) -> int:
        return self.period * self.cycles

    def ahead(self, n: int) -> list[int]:
        """The ring positions an update of ``n`` rows reads (the same phase, earlier periods)."""
        back = self._back(n)
        return back[back < self.rows].tolist()

    def _back(self, n: int) -> np.ndarray:
        """Positions of the same phase 1..cycles periods before each of ``n`` new rows."""
        return self.rows + np.arange(n)[:, None] - self.period * np.arange(1, self.cycles + 1)

    def _seasonal(self, detrended: np.ndarray) -> np.ndarray:
        """``s`` for each new row (0 without a period); moves the ring of detrended values on,
        so an update costs O(new points x cycles), not O(ring)."""
        if not self.period:
            return np.zeros(detrended.shape)
        if self.ring is None:
            raise RuntimeError("the ESD ring is not attached")
        n = len(detrended)
        back = self._back(n)
        old = back < self.rows  # in the ring; the others are rows of this block
        stacked = np.empty((n, self.cycles, detrended.shape[1]))
        stacked[old] = self.ring.take(back[old])
        stacked[~old] = detrended[back[~old] - self.rows]
        keep = min(n, self.ring_span)
        self.ring.write(self.rows + n - keep, detrended[n - keep :])
        self.rows += n
        return seasonal_median(stacked)
