"""Why a point was labelled: which view of the ensemble fired, and the band it expected.

An on-call reading ``latency_p99 480, expected 40-65 (seasonal, same time 1 day ago)`` can judge
the alarm at a glance. The explanation is taken from the ensemble's state *before* the points of
an update (``Before.of``), the state the first new point was scored against: in a watch cycle
(one new point per series) it is exact; for a later point of a longer block (a series' first
cycle, a backlog) it is the view from before that block. Each view's surprise for the observed
value is recomputed as the ensemble ranks it, and the largest names the view; its band is where
99% of the series' own past values of that view fell (read off the view's rank histogram), so a
noisy series gets a wide band and a calm one a narrow one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lazarus.detect.calibrate import BINS, LOG_LOW, PER_DECADE, TailRank, bin_of
from lazarus.detect.ensemble import RECORD_TOLERANCE, Ensemble
from lazarus.detect.ewm import RELATIVE, SETTLE, TINY, Ewm

USUAL = 0.01  # the band holds all but this share of the series' past values of a view
FALLBACK_Z = 3.0  # band half-width in scales before a view has any history


@dataclass(frozen=True)
class Why:
    """The view that fired and the band it expected (``low`` <= usual <= ``high``)."""

    view: str
    low: float
    high: float

    def text(self, value: float) -> str:
        return f"{value:.4g}, expected {self.low:.4g} to {self.high:.4g} ({self.view})"

    def lasting(self, points: int) -> Why:
        """The same band, said of an alarm the shift channel raised: the last ``points``
        together were the news, so the value itself may sit inside the band."""
        return Why(
            f"a lasting shift over the last {points} points; {self.view}", self.low, self.high
        )


@dataclass(frozen=True)
class _Column:
    """What one view knew about one series before the update."""

    centre: float  # the value it expected
    scale: float  # one unit of its z
    ranks: TailRank
    moving: np.ndarray  # the last smoothed |z| values (``MovingMean`` tail), newest last


class Before:
    """The ensemble's per-series state before an update (copies; cheap: a few arrays)."""

    def __init__(self, ensemble: Ensemble, period_back: np.ndarray | None):
        self.ensemble = ensemble
        level = ensemble.level
        self.level = _ewm_copy(level)
        self.level_floor = level.step / np.maximum(level.weight, TINY)
        self.level_tail = ensemble.moving.tail.copy()
        self.level_filled = ensemble.moving.filled
        self.high, self.low = ensemble.high.copy(), ensemble.low.copy()
        self.count = ensemble.count.copy()
        self.above = [r.above.copy() for r in ensemble.ranks]
        seasonal = ensemble.seasonal
        ready = (
            seasonal is not None and period_back is not None and seasonal.seen >= seasonal.period
        )
        self.period = seasonal.period if ready else 0
        if ready:
            self.season = _ewm_copy(seasonal.ewm)
            self.season_back = np.array(period_back, dtype=float)
            self.season_tail = ensemble.seasonal_moving.tail.copy()

    @classmethod
    def of(cls, ensemble: Ensemble) -> Before:
        """Take the snapshot; the seasonal ring (if any) must be attached (``rings``)."""
        seasonal = ensemble.seasonal
        back = None
        if seasonal is not None and seasonal.ring is not None:
            back = seasonal.ring.read(seasonal.seen, 1)[0]
        return cls(ensemble, back)

    def why(self, col: int, value: float, period: str = "") -> Why:
        """The view that fired for ``value`` at column ``col``, with its expected band."""
        views: list[tuple[float, Why]] = []
        level = _z(self.level, col, value, self.level_floor[col])
        if level is not None:
            z, centre, scale = level
            views.append(self._view(0, col, z, centre, scale, "level, its recent mean"))
            width = self.ensemble.params.smooth
            tail = self.level_tail[:, col][-(width - 1) :] if width > 1 else np.zeros(0)
            shift = (float(tail.sum()) + z) / min(self.level_filled + 1, width)
            views.append(self._view(1, col, shift, centre, scale, f"the mean of {width} points"))
        if self.period:
            back = float(self.season_back[col])
            seasonal = _z(self.season, col, value - back, self.level_floor[col])
            if seasonal is not None:
                z, centre, scale = seasonal
                when = period or f"{self.period} points"
                label = f"seasonal, same time {when} ago"
                views.append(self._view(2, col, z, back + centre, scale, label))
        n = int(self.count[col])
        high, low = float(self.high[col]), float(self.low[col])
        if n >= SETTLE and math.isfinite(high) and math.isfinite(low):
            slack = RECORD_TOLERANCE * max(abs(high), abs(low))
            if value > high + slack or value < low - slack:
                views.append(
                    (
                        math.log10(n + 1) / 4.0,
                        Why("a new record: every earlier value was in this range", low, high),
                    )
                )
        if not views:
            return Why("no view had history before this update", value, value)
        return max(views, key=lambda v: v[0])[1]

    def _view(
        self, index: int, col: int, z: float, centre: float, scale: float, label: str
    ) -> tuple[float, Why]:
        above = self.above[index][:, col]
        half = _usual_z(above) * scale
        # Never wider than what the series has shown (no negative band for a count).
        low = max(centre - half, float(self.low[col]))
        high = min(centre + half, float(self.high[col]))
        return _surprise(above, z), Why(label, min(low, high), max(low, high))


def _ewm_copy(ewm: Ewm) -> Ewm:
    copy = Ewm(0, 1)
    copy.__dict__.update({k: np.array(v) for k, v in ewm.__dict__.items() if k != "alpha"})
    copy.alpha = ewm.alpha
    return copy


def _z(ewm: Ewm, col: int, value: float, floor: float) -> tuple[float, float, float] | None:
    """(|z|, expected value, scale) as ``Ewm`` scores ``value``; None before it settles."""
    if ewm.count[col] < SETTLE or not math.isfinite(value):
        return None
    weight = max(float(ewm.weight[col]), TINY)
    mean = float(ewm.mean[col])
    scale = max(math.sqrt(float(ewm.var[col]) / weight), floor, RELATIVE * abs(mean) + TINY)
    return abs(value - mean) / scale, mean, scale


def _surprise(above: np.ndarray, z: float) -> float:
    """``TailRank``'s surprise of ``z`` against one series' histogram."""
    k = float(above[-1])
    ge = float(above[BINS - 1 - int(bin_of(np.array([z]))[0])])
    return (math.log10(k + 1) - math.log10(ge + 1)) / 4.0


def _usual_z(above: np.ndarray) -> float:
    """The z below which all but ``USUAL`` of the series' past values of a view fell."""
    k = float(above[-1])
    if not k:
        return FALLBACK_Z
    # above[j] counts values in bin BINS-1-j or higher: the first bin from the top whose
    # count passes the share is where the usual values end.
    j = int(np.argmax(above > USUAL * k))
    top_bin = BINS - 1 - j
    return 10.0 ** ((top_bin + 1) / PER_DECADE + LOG_LOW - 1 / PER_DECADE)
