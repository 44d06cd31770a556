"""NAB-format CSV in, the same rows plus ``anomaly_score`` out (`lazarus detect`).

Rows are scored in file order, one series per file, with one configuration for every file:
the seasonal period is one day in points, taken from the median spacing of the first
timestamps (no period when the spacing is unknown or a day holds fewer than 4 points).
A value that is not a number is a gap (see ``clean``); an unparsable, duplicate or
out-of-order timestamp changes nothing: the detector sees points, not clocks.

Beside the ensemble's evidence (is this *value* surprising?) runs a second, different kind of
view: ``novelty`` (has this recent *shape* been seen before?). Each says its own episodes: a rise
of a view counts against that view's bar as it stood ``LAG`` points before (``lagged_excess``: a
ramp counts whole), the novelty's at ``NOVELTY_WEIGHT``, and the larger of the two is the score;
within one climb only a score higher than the climb's earlier ones stays (``climbing``).
After a label a cool-down that grows with the points seen so far, and lasts at least as long as
a novelty episode can stay above its bar, keeps the same episode from being said twice
(``cool_down``). The watch ensemble, which runs forever (where 2% of the points
seen would grow to days), keeps its own say-it-once rule.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from lazarus.detect.clean import as_block
from lazarus.detect.ensemble import Ensemble, EnsembleParams
from lazarus.detect.novelty import SPAN, novelty

DAY = 86400.0
LAG = 20  # points: a rise of the evidence within this many points counts whole
COOL_DOWN = 0.02  # after a label, the next 2% of the points seen so far score 0
# A lone view: the ensemble's evidence is the mean of its two largest surprises, so one view on
# its own counts half; the novelty is one view.
NOVELTY_WEIGHT = 0.5


def period_points(stamps: Sequence[datetime | None], period: float = DAY) -> int:
    """Points per ``period`` from the median spacing of the first 200 timestamps (0 if unknown)."""
    seconds = np.array([s.timestamp() for s in stamps[:200] if s is not None])
    steps = np.diff(seconds)
    steps = steps[steps > 0]
    if len(steps) == 0:
        return 0
    points = round(period / float(np.median(steps)))
    return points if points >= 4 else 0


def score_values(
    values: Sequence[float] | np.ndarray,
    stamps: Sequence[datetime | None],
    params: EnsembleParams | None = None,
) -> np.ndarray:
    """Anomaly score in [0, 1] for each value of one series."""
    params = replace(params or EnsembleParams(), season=period_points(stamps))
    series = as_block(np.asarray(values, dtype=object))
    # Evidence from the first point on, so the end of the warm-up is no new episode.
    evidence = Ensemble(1, replace(params, warmup=0)).update(series).evidence[0]
    lag = min(LAG, params.suppress)
    scores = np.maximum(
        lagged_excess(evidence.astype(np.float64), params.suppress, lag),
        NOVELTY_WEIGHT * lagged_excess(novelty(series[0]), params.suppress, lag),
    )
    scores[np.cumsum(np.isfinite(series[0])) <= params.warmup] = 0.0
    # A new shape keeps the novelty up for a feature's span, and its bar lags ``lag`` points.
    return cool_down(climbing(scores, lag), params.threshold, least=lag + SPAN)


def lagged_excess(evidence: np.ndarray, window: int, lag: int) -> np.ndarray:
    """``max(0, e[t] - max(e[t - window : t - lag + 1]))``: how far the evidence beats its
    maximum over ``window`` points, leaving out the last ``lag - 1``.

    Against the maximum up to the point before (the watch ensemble's rule), a surprise that
    climbs over a few points scores only its last small step, and on NAB several windows were
    lost that way; against the bar of ``lag`` points ago the whole climb counts. The price is
    that an episode can score again ``lag`` points on, which ``cool_down`` takes away.
    """
    if not 1 <= lag <= window:
        raise ValueError(f"need 1 <= lag <= window, got lag {lag}, window {window}")
    n = len(evidence)
    padded = np.concatenate([np.zeros(window), evidence])
    bar = np.lib.stride_tricks.sliding_window_view(padded, window - lag + 1)[:n].max(axis=1)
    return np.maximum(evidence - bar, 0.0)


def climbing(scores: np.ndarray, gap: int) -> np.ndarray:
    """Keep a score only where it beats every earlier score of its run (positive scores less
    than ``gap`` points apart): against a bar ``gap`` points old, one climb scores at each of
    its steps, and a step no higher than what the climb already said is no news."""
    out = np.array(scores, dtype=float)
    said, last = 0.0, -gap
    for t in np.flatnonzero(out > 0):
        if t - last >= gap:
            said = 0.0
        last = t
        if out[t] <= said:
            out[t] = 0.0
        else:
            said = out[t]
    return out


def cool_down(
    scores: np.ndarray, threshold: float, fraction: float = COOL_DOWN, least: int = 0
) -> np.ndarray:
    """Zero the ``max(least, int(fraction * t))`` points after a score >= ``threshold`` at ``t``.

    One incident in a recording tends to stir up its surroundings for a stretch that scales with
    the recording (on NAB, incidents are labelled with windows of ~10% of a file's length over
    their count), and the say-it-once rule forgets after a fixed ~1,000 points. The quiet stretch
    uses only the points seen so far (causal), so it is short early in a file and at most a
    fiftieth of it; a later, larger surprise still speaks once the stretch is over. ``least``
    covers an episode that lasts longer than that early in a file. See bench/README.md for what
    it gained on NAB and how the fraction was chosen.
    """
    out = np.array(scores, dtype=float)
    quiet_until = -1
    for t in np.flatnonzero(out >= threshold):
        if t > quiet_until:
            quiet_until = t + max(least, int(fraction * t))
            out[t + 1 : quiet_until + 1] = 0.0
    return out


def _stamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def detect_file(src: Path, dst: Path, params: EnsembleParams | None = None) -> int:
    """Score ``src`` (``timestamp,value``) into ``dst``; returns the number of rows."""
    with open(src, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise ValueError(f"{src}: expected a header 'timestamp,value'")
            rows = [row for row in reader if row]
        except csv.Error as exc:  # a field past the csv module's limit (128 KiB), a NUL byte
            raise ValueError(
                f"{src}:{reader.line_num}: not a timestamp,value row ({exc})"
            ) from None
    stamps = [_stamp(row[0]) for row in rows]
    values = [row[1] if len(row) > 1 else "" for row in rows]
    scores = score_values(values, stamps, params)
    with open(dst, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*header, "anomaly_score"])
        for row, score in zip(rows, scores, strict=True):
            writer.writerow([*row, f"{score:.6f}"])
    return len(rows)
