"""NAB-format CSV in, the same rows plus ``anomaly_score`` out (`lazarus detect`).

The score is the watch's own: the rows go through a ``Cohort`` (the ensemble and its
say-it-once rule, exactly what ``cycle.detect_series`` keeps per series) in time order, and a
row is labelled when its score reaches the ensemble's threshold, as in the watch. Nothing here
exists only for files; tests/unit/test_detect_csv_watch.py replays a file through the watch and
compares the labels. The seasonal period is one day in points from the median spacing of the
first timestamps (the watch's default ``season: 1d`` over its interval).

Rows the watch would not see score 0 and teach nothing: a timestamp that is not newer than the
last accepted one (a duplicate, a clock stepping back) is dropped, as the watch drops it. A value
that is not a number is a gap (see ``clean``). A timestamp that cannot be read is an error that
names its line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lazarus.detect.clean import as_block
from lazarus.detect.ensemble import EnsembleParams
from lazarus.detect.explain import Before, Why
from lazarus.detect.extras import Cohort, CohortSpec

DAY = 86400.0


def period_points(stamps: Sequence[datetime | None], period: float = DAY) -> int:
    """Points per ``period`` from the median spacing of the first 200 timestamps (0 if unknown)."""
    seconds = np.array([s.timestamp() for s in stamps[:200] if s is not None])
    steps = np.diff(seconds)
    steps = steps[steps > 0]
    if len(steps) == 0:
        return 0
    points = round(period / float(np.median(steps)))
    return points if points >= 4 else 0


def in_order(stamps: Sequence[datetime]) -> np.ndarray:
    """Which rows a watch would take: each strictly newer than every row taken before it."""
    seconds = np.array([s.timestamp() for s in stamps], dtype=float)
    if not len(seconds):
        return np.zeros(0, dtype=bool)
    before = np.maximum.accumulate(np.concatenate([[-np.inf], seconds[:-1]]))
    return seconds > before


def score_values(
    values: Sequence[object] | np.ndarray,
    stamps: Sequence[datetime],
    params: EnsembleParams | None = None,
) -> np.ndarray:
    """Anomaly score in [0, 1] per row of one series, as the watch scores its points."""
    taken, series, spec = _points(values, stamps, params)
    out = np.zeros(len(taken))
    out[taken] = Cohort(1, spec).update(series)[0].score[0]
    return out


@dataclass(frozen=True)
class Label:
    """A row the watch would label, and why."""

    row: int  # index among the rows given
    value: float
    score: float
    why: Why

    def text(self) -> str:
        return f"{self.why.text(self.value)}; score {self.score:.2f}"


def explain_labels(
    values: Sequence[object] | np.ndarray,
    stamps: Sequence[datetime],
    params: EnsembleParams | None = None,
) -> list[Label]:
    """Every row the watch would label, each explained from the state just before it, as a
    watch cycle explains its one new point: a second pass stops before each labelled row
    (batch and point-by-point updates score alike, so it labels the same rows)."""
    taken, series, spec = _points(values, stamps, params)
    rows = np.flatnonzero(taken)
    labelled = np.flatnonzero(Cohort(1, spec).update(series)[0].label[0])
    cohort, start, out = Cohort(1, spec), 0, []
    for i in labelled:
        if i > start:
            cohort.update(series[:, start:i])
        before = Before.of(cohort.ensemble)
        scores = cohort.update(series[:, i : i + 1])[0]
        value = float(series[0, i])
        why = before.why(0, value, "1 day")
        if points := scores.lasting_over(0, 0):
            why = why.lasting(points)
        out.append(Label(int(rows[i]), value, float(scores.score[0, 0]), why))
        start = i + 1
    return out


def _points(
    values: Sequence[object] | np.ndarray,
    stamps: Sequence[datetime],
    params: EnsembleParams | None,
) -> tuple[np.ndarray, np.ndarray, CohortSpec]:
    """The rows a watch would take, their values as a block, and the watch's cohort settings
    (the seasonal period a day in points from the spacing)."""
    taken = in_order(stamps)
    kept = [s for s, ok in zip(stamps, taken, strict=True) if ok]
    params = replace(params or EnsembleParams(), season=period_points(kept))
    return taken, as_block(np.asarray(values, dtype=object)[taken]), CohortSpec(params)


def _stamp(text: str, where: str) -> datetime:
    """An ISO 8601 time, or seconds since the epoch; anything else names its line."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromtimestamp(float(text), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"{where}: timestamp {text!r} is neither ISO 8601 nor epoch seconds"
        ) from None


def detect_file(
    src: Path, dst: Path, params: EnsembleParams | None = None
) -> list[tuple[str, Label]]:
    """Score ``src`` (``timestamp,value``) into ``dst``; returns each row the watch would
    label, with its place (``file:line timestamp``)."""
    with open(src, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise ValueError(f"{src}: expected a header 'timestamp,value'")
            rows = [(reader.line_num, row) for row in reader if row]
        except csv.Error as exc:  # a field past the csv module's limit (128 KiB), a NUL byte
            raise ValueError(
                f"{src}:{reader.line_num}: not a timestamp,value row ({exc})"
            ) from None
    if not rows:  # a header alone: nothing to score
        dst.write_text(",".join([*header, "anomaly_score"]) + "\n")
        return []
    stamps = [_stamp(row[0], f"{src}:{n}") for n, row in rows]
    values = [row[1] if len(row) > 1 else "" for _, row in rows]
    scores = score_values(values, stamps, params)
    with open(dst, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*header, "anomaly_score"])
        for (_, row), score in zip(rows, scores, strict=True):
            writer.writerow([*row, f"{score:.6f}"])
    return [
        (f"{src}:{rows[label.row][0]} {rows[label.row][1][0]}", label)
        for label in explain_labels(values, stamps, params)
    ]
