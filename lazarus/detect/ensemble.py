"""The ensemble: one anomaly score in [0, 1] and a label per point, for many series at once.

Per series it runs, causally and with O(new points) state:

- EWMA/EWMV z of the level (``ewm``) and its 5-point moving mean (a short shift, not one spike);
- the seasonal residual z (``seasonal``), when a period is given;
- records: a value above every earlier one (or below), worth ``log10(k + 1) / 4`` after k points.

Each feature is ranked against the series' own history (``calibrate``), the evidence of a point
is the mean of its two largest surprises (two views must agree: on NAB this beat taking the
largest by 5 points, mostly fewer false alarms on spiky series), and ``suppress`` keeps only the
first point of an episode. Before ``warmup`` points the score is 0, but the say-it-once memory
already sees that stretch, so the end of the warm-up does not look like a new episode. The default
parameters were chosen on the *kind* of data in NAB (minutely to hourly operations metrics) and
need no per-series tuning; see bench/README.md for the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from lazarus.config import AnomalySettings
from lazarus.detect.calibrate import TailRank
from lazarus.detect.clean import Carry, as_block
from lazarus.detect.ewm import SETTLE, Ewm, MovingMean
from lazarus.detect.seasonal import Seasonal
from lazarus.detect.suppress import Suppressor

RECORD_TOLERANCE = 1e-9  # a "record" by float rounding (a repeating cycle) is no record


@dataclass(frozen=True)
class EnsembleParams:
    """Knobs of the ensemble; the defaults need no tuning. Counts are in points."""

    span: int = 5000  # EW memory of the level statistics
    smooth: int = 5  # moving mean of |z| that catches short shifts
    season: int = 0  # points per period (e.g. a day); 0 = no seasonal view
    warmup: int = 200  # points of a series before its score may be non-zero
    suppress: int = 1024  # look-back of the "say it once" rule
    threshold: float = 0.05  # label = score >= threshold (NAB sweeps its own: ~0.04)
    chunk: int = 64  # time steps processed at once (keeps temporaries in cache)


def params_for(series: str, settings: Sequence[AnomalySettings], interval: float) -> EnsembleParams:
    """Parameters of the first config entry whose glob matches ``series`` (else the defaults);
    ``interval`` is the series' sampling step in seconds, to turn the season into points."""
    chosen = next((s for s in settings if fnmatchcase(series, s.series)), AnomalySettings())
    season = round(chosen.season / interval) if chosen.season and interval > 0 else 0
    return EnsembleParams(
        span=chosen.span,
        smooth=chosen.smooth,
        season=season if season >= 4 else 0,
        warmup=chosen.warmup,
        suppress=chosen.suppress,
        threshold=chosen.threshold,
    )


@dataclass(frozen=True)
class Scores:
    """Per point, ``(series x time)``: ``evidence`` is the mean of the two largest surprises in
    [0, 1]; ``score`` keeps only what beats the recent maximum of the evidence (the first point
    of an episode), and ``label`` is ``score >= threshold``."""

    score: np.ndarray
    evidence: np.ndarray
    label: np.ndarray


class Ensemble:
    """Stateful scorer for a fixed set of series; feed it blocks of new points in time order.

    The state is plain numpy arrays: pickle the object to keep it between watch runs.
    """

    def __init__(self, n_series: int, params: EnsembleParams | None = None):
        p = self.params = params or EnsembleParams()
        self.n_series = n_series
        self.carry = Carry(n_series)
        self.level = Ewm(n_series, p.span)
        self.moving = MovingMean(n_series, p.smooth)
        self.seasonal = Seasonal(n_series, p.season, p.span) if p.season > 0 else None
        self.seasonal_moving = MovingMean(n_series, p.smooth)
        n_features = 3 if self.seasonal else 2
        self.ranks = [TailRank(n_series) for _ in range(n_features)]
        self.high = np.full(n_series, -np.inf)
        self.low = np.full(n_series, np.inf)
        self.count = np.zeros(n_series, dtype=np.int64)
        self.suppressor = Suppressor(n_series, p.suppress)

    def update(self, values: object) -> Scores:
        """Score a ``(series x time)`` block of new points (one series may be given as 1-D)."""
        block = as_block(values)
        if block.shape[0] != self.n_series:
            raise ValueError(f"expected {self.n_series} series, got {block.shape[0]}")
        score = np.empty(block.shape)
        evidence = np.empty(block.shape, dtype=np.float32)
        for start in range(0, block.shape[1], self.params.chunk):
            stop = start + self.params.chunk
            found, speaking = self._rows(block[:, start:stop].T)
            # The say-it-once memory also sees the warm-up, so its end is not a fresh episode.
            said = self.suppressor.update(found)
            evidence[:, start:stop] = (found * speaking).T
            score[:, start:stop] = (said * speaking).T
        return Scores(score, evidence, score >= self.params.threshold)

    def _rows(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evidence for ``(time x series)`` raw rows, and where the warm-up is over."""
        rows, valid = self.carry.fill(raw)
        count = self.count + np.cumsum(valid, axis=0)
        if len(rows):
            self.count = count[-1]
        z, steps = self.level.update(rows, valid)
        features = [z, self.moving.update(z)]
        if self.seasonal:
            features.append(self.seasonal_moving.update(self.seasonal.update(rows, valid, steps)))
        top1 = np.zeros(rows.shape)
        top2 = np.zeros(rows.shape)
        for rank, feature in zip(self.ranks, features, strict=True):
            _top2(top1, top2, rank.update(feature, valid))
        for record in self._records(rows, valid, count):
            _top2(top1, top2, record)
        top1 += top2
        top1 *= 0.5
        return np.clip(top1, 0.0, 1.0, out=top1), count > self.params.warmup

    def _records(self, rows: np.ndarray, valid: np.ndarray, count: np.ndarray) -> list:
        """Surprise of new all-time highs and lows: ``log10(points so far) / 4``.

        A value counts as a record only if it beats the old one by more than float rounding.
        """
        out = []
        for sign in (1.0, -1.0):
            signed = rows * sign
            if not valid.all():
                signed = np.where(valid, signed, -np.inf)
            state = self.high if sign > 0 else -self.low
            best = np.maximum.accumulate(np.vstack([state, signed]), axis=0)
            before = best[:-1]
            with np.errstate(invalid="ignore"):  # -inf before the first value
                record = signed > before + RECORD_TOLERANCE * np.abs(before)
            record &= np.isfinite(before) & (count > SETTLE)
            where = np.nonzero(record)
            surprise = np.zeros(rows.shape)
            surprise[where] = np.log10(count[where]) / 4.0
            out.append(surprise)
            if sign > 0:
                self.high = best[-1]
            else:
                self.low = -best[-1]
        return out


def _top2(top1: np.ndarray, top2: np.ndarray, value: np.ndarray) -> None:
    """Fold ``value`` into the running largest and second-largest, in place."""
    np.maximum(top2, np.minimum(top1, value), out=top2)
    np.maximum(top1, value, out=top1)
