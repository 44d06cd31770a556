"""The ensemble: one anomaly score in [0, 1] and a label per point, for many series at once.

Per series it runs, causally and with O(new points) state:

- EWMA/EWMV z of the level (``ewm``) and its 5-point moving mean (a short shift, not one spike);
- the seasonal residual z (``seasonal``), when a period is given;
- records: a value above every earlier one (or below), worth ``log10(k) / 4`` after k points, at
  most ``log10(span) / 4``, what the rarest value of a faded rank is worth.

Each feature is ranked against the series' own history, fading over ``span`` points
(``calibrate``), the evidence of a point is the mean of its two largest surprises (two views
must agree: on NAB this beat taking the largest by 5 points, mostly fewer false alarms on spiky
series), and ``suppress`` keeps only the first point of an episode. A second, shift channel
ranks the evidence's ``shift``-point mean against its own history and says it once on its own
(weighted ``shift_weight``): a lasting shift is news even within ``suppress`` points of a larger
spike, which the first channel would hide (see bench/README.md for what it found on NAB). A
third, drift channel does the same over ``drift`` points: a slow change whose every 20-point
stretch looks ordinary.
Last, a run of consecutive scoring points is said once: a burst that climbs beats its own last
point a little each step, and only what a point adds to the run's largest score is news.
Before ``warmup`` points the score is 0, but the say-it-once memories already see that stretch,
so the end of the warm-up does not look like a new episode. The default parameters were chosen
on the *kind* of data in NAB (minutely to hourly operations metrics) and need no per-series
tuning; see bench/README.md for the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from lazarus.config import AnomalySettings
from lazarus.detect.calibrate import TailRank
from lazarus.detect.clean import Carry, as_block, running, transpose_into
from lazarus.detect.ewm import SETTLE, Ewm, MovingMean, RunningMean
from lazarus.detect.seasonal import Seasonal
from lazarus.detect.suppress import RunSuppressor, Suppressor

RECORD_TOLERANCE = 1e-9  # a "record" by float rounding (a repeating cycle) is no record
PARALLEL = 1 << 18  # points in one update from which a second thread is worth starting


@dataclass(frozen=True)
class EnsembleParams:
    """Knobs of the ensemble; the defaults need no tuning. Counts are in points."""

    span: int = 5000  # EW memory of the level statistics
    smooth: int = 5  # moving mean of |z| that catches short shifts
    season: int = 0  # points per period (e.g. a day); 0 = no seasonal view
    warmup: int = 200  # points of a series before its score may be non-zero
    suppress: int = 2048  # look-back of the "say it once" rule
    shift: int = 20  # points the shift channel averages the evidence over
    shift_weight: float = 0.2  # what a shift channel's news is worth against a point's
    drift: int = 200  # points the drift channel averages the evidence over (a slow change)
    threshold: float = 0.025  # label = score >= threshold (bench/README.md: chosen by the CV)
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
    """Per point, ``(series x time)``, float32: ``evidence`` is the mean of the two largest
    surprises in [0, 1]; ``score`` keeps only what beats the recent maximum of the evidence (the
    first point of an episode) or of a shift channel's surprise (weighted ``shift_weight``),
    and ``label`` is ``score >= threshold``; ``lasting`` is 0 where the point channel gave the
    score, else the shift channel's number (from 1), whose width ``widths[lasting - 1]`` the
    alarm's explanation says (a lasting shift over that many points)."""

    score: np.ndarray
    evidence: np.ndarray
    label: np.ndarray
    lasting: np.ndarray
    widths: tuple[int, ...] = ()

    def lasting_over(self, series: int, t: int) -> int:
        """Points of the lasting shift that gave point ``t`` its score (0: the point itself)."""
        k = int(self.lasting[series, t])
        return self.widths[k - 1] if k else 0


class LastingChannel:
    """The evidence's mean over ``width`` points, ranked against its own faded history and said
    once on its own: a spike does not hide a later lasting shift of that length. The mean is
    ranked as a sum per ``per`` points (the shift's width): one spike's share of a long window
    then stays above the ranks' floor (0.01), instead of crossing it points later as a new
    record that pages again."""

    def __init__(self, n_series: int, width: int, memory: int, suppress: int, per: int):
        self.width = width
        self.per = per
        self.moving = RunningMean(n_series, width)
        self.rank = TailRank(n_series, memory=memory)
        self.suppressor = Suppressor(n_series, suppress)

    def surprise(self, evidence: np.ndarray, valid: np.ndarray) -> np.ndarray:
        means = self.moving.update(evidence)
        if self.width != self.per:
            means *= self.width / self.per
        return self.rank.update(means, valid)


class Ensemble:
    """Stateful scorer for a fixed set of series; feed it blocks of new points in time order.

    The state is plain numpy arrays: pickle the object to keep it between watch runs. A large
    block (a backtest, a first load) runs the seasonal view on a second thread; the scores are
    the same bit for bit either way.
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
        self.ranks = [TailRank(n_series, memory=p.span) for _ in range(n_features)]
        self.high = np.full(n_series, -np.inf)
        self.low = np.full(n_series, np.inf)
        self.count = np.zeros(n_series, dtype=np.int64)
        self.suppressor = Suppressor(n_series, p.suppress)
        self.burst = RunSuppressor(n_series)
        self.channels = [self._channel(p.shift), self._channel(p.drift)]

    def _channel(self, width: int) -> LastingChannel:
        p = self.params
        return LastingChannel(self.n_series, width, p.span, p.suppress, per=p.shift)

    def __setstate__(self, state: dict) -> None:
        """A state pickled before the shift and drift channels or the run rule existed starts
        what it lacks (memories empty) and carries the shift channel it kept."""
        old = [state.pop(f"shift_{part}", None) for part in ("moving", "rank", "suppressor")]
        self.__dict__.update(state)
        if "channels" not in state:
            shift = self._channel(self.params.shift)
            if old[1] is not None:
                shift.moving, shift.rank, shift.suppressor = old
            self.channels = [shift, self._channel(self.params.drift)]
        if "burst" not in state:
            self.burst = RunSuppressor(self.n_series)

    def update(self, values: object) -> Scores:
        """Score a ``(series x time)`` block of new points (one series may be given as 1-D)."""
        block = as_block(values)
        if block.shape[0] != self.n_series:
            raise ValueError(f"expected {self.n_series} series, got {block.shape[0]}")
        # float32, as the evidence: a score needs no more digits, and a batch of 10,000 x 1,440
        # points then fits within 3x the input with the shift channel's state beside it.
        score = np.empty(block.shape, dtype=np.float32)
        evidence = np.empty(block.shape, dtype=np.float32)
        lasting = np.empty(block.shape, dtype=np.uint8)
        # numpy frees the GIL inside its loops, so a second core can take the seasonal view.
        parallel = self.seasonal is not None and block.size >= PARALLEL
        with ThreadPoolExecutor(1) if parallel else nullcontext() as helper:
            for start in range(0, block.shape[1], self.params.chunk):
                stop = start + self.params.chunk
                # One time step per contiguous row: every detector below steps through time.
                part = block[:, start:stop]
                raw = transpose_into(np.empty(part.shape[::-1]), part)
                found, valid, speaking = self._rows(raw, helper)
                # The say-it-once memory also sees the warm-up: its end is not a fresh episode.
                said = self.suppressor.update(found)
                won = np.zeros(said.shape, dtype=np.uint8)
                for k, channel in enumerate(self.channels, 1):  # one channel's rows at a time
                    shifted = channel.suppressor.update(channel.surprise(found, valid))
                    shifted *= self.params.shift_weight
                    won[shifted > said] = k
                    np.maximum(said, shifted, out=said)
                said = self.burst.update(said)
                if speaking is not None:
                    found *= speaking
                    said *= speaking
                transpose_into(evidence[:, start:stop], found)
                transpose_into(score[:, start:stop], said)
                transpose_into(lasting[:, start:stop], won)
        widths = tuple(channel.width for channel in self.channels)
        return Scores(score, evidence, score >= self.params.threshold, lasting, widths)

    def _rows(
        self, raw: np.ndarray, helper: ThreadPoolExecutor | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Evidence for ``(time x series)`` raw rows, where a row is a real value (not a gap),
        and where the warm-up is over (None: everywhere). ``helper`` (if any) runs the seasonal
        view on a second thread."""
        rows, valid = self.carry.fill(raw)
        before = self.count
        whole = bool(valid.all())
        # Valid points so far, at each point (only built when gaps or the warm-up need it).
        count = None if whole else before + running(np.add, valid.astype(np.int64))
        if len(rows):
            self.count = before + len(rows) if whole else count[-1]
        speaking = None
        if len(rows) and (before <= self.params.warmup).any():
            if count is None:
                count = before + np.arange(1, len(rows) + 1)[:, None]
            speaking = count > self.params.warmup
        z, steps = self.level.update(rows, valid)
        if self.seasonal and helper:  # its own state only: it may run beside the level views
            seasonal = helper.submit(self._seasonal, rows, valid, steps)
        # The running largest and second largest surprise (every surprise is >= 0; the order
        # of folding does not matter).
        top1 = self.ranks[0].update(z, valid)
        top2 = np.zeros(rows.shape)
        _top2(top1, top2, self.ranks[1].update(self.moving.update(z), valid))
        self._records(rows, valid, before, count, top1, top2)
        if self.seasonal:
            surprise = seasonal.result() if helper else self._seasonal(rows, valid, steps)
            _top2(top1, top2, surprise)
        top1 += top2
        top1 *= 0.5
        np.clip(top1, 0.0, 1.0, out=top1)
        return top1, valid, speaking

    def _seasonal(self, rows: np.ndarray, valid: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Surprise of the smoothed seasonal residual z."""
        z = self.seasonal_moving.update(self.seasonal.update(rows, valid, steps))
        return self.ranks[2].update(z, valid)

    def _records(
        self,
        rows: np.ndarray,
        valid: np.ndarray,
        before: np.ndarray,
        count: np.ndarray | None,
        top1: np.ndarray,
        top2: np.ndarray,
    ) -> None:
        """Fold the surprise of new all-time highs and lows, ``log10(points so far) / 4`` up to
        ``log10(span) / 4``, into the running top two. The cap is the ranks' own (they fade over
        ``span``): a record on a long series is worth no more than on one ``span`` points long.

        A value counts as a record only if it beats the old one by more than float rounding.
        Records are rare, so only the points that beat the old extreme at all are looked at.
        A gap's stand-in (the last real value) can never beat the extremes, except before a
        series' first value: only then are gaps masked.
        """
        masked = not valid.all() and not np.isfinite(self.high).all()
        for rising in (True, False):
            state, extreme = (self.high, np.maximum) if rising else (self.low, np.minimum)
            signed = np.where(valid, rows, -np.inf if rising else np.inf) if masked else rows
            last = extreme.reduce(signed, axis=0)
            extreme(last, state, out=last)
            # Only the series whose extreme moved in this block can hold a record.
            moved = np.flatnonzero(last != state)
            if rising:
                self.high = last
            else:
                self.low = last
            if not len(moved):
                continue
            best = np.empty((len(rows) + 1, len(moved)))
            best[0] = state[moved]
            best[1:] = signed[:, moved]
            running(extreme, best)
            t, c = np.nonzero(best[1:] != best[:-1])
            s = moved[c]
            old, new = best[t, c], signed[t, s]
            slack = RECORD_TOLERANCE * np.abs(old)
            with np.errstate(invalid="ignore"):  # -inf before the first value
                record = new > old + slack if rising else new < old - slack
            n = before[s] + t + 1 if count is None else count[t, s]
            record &= np.isfinite(old) & (n > SETTLE)
            t, s = t[record], s[record]
            surprise = np.log10(np.minimum(n[record], self.params.span)) / 4.0
            high = top1[t, s]
            top2[t, s] = np.maximum(top2[t, s], np.minimum(high, surprise))
            top1[t, s] = np.maximum(high, surprise)


def _top2(top1: np.ndarray, top2: np.ndarray, value: np.ndarray) -> None:
    """Fold ``value`` into the running largest and second-largest, in place."""
    np.maximum(top2, np.minimum(top1, value), out=top2)
    np.maximum(top1, value, out=top1)
