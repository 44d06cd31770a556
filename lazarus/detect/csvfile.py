"""NAB-format CSV in, the same rows plus ``anomaly_score`` out (`lazarus detect`).

Rows are scored in file order, one series per file, with one configuration for every file:
the seasonal period is one day in points, taken from the median spacing of the first
timestamps (no period when the spacing is unknown or a day holds fewer than 4 points).
A value that is not a number is a gap (see ``clean``); an unparsable, duplicate or
out-of-order timestamp changes nothing: the detector sees points, not clocks.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from lazarus.detect.ensemble import Ensemble, EnsembleParams

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


def score_values(
    values: Sequence[float] | np.ndarray,
    stamps: Sequence[datetime | None],
    params: EnsembleParams | None = None,
) -> np.ndarray:
    """Anomaly score in [0, 1] for each value of one series."""
    params = replace(params or EnsembleParams(), season=period_points(stamps))
    return Ensemble(1, params).update(np.asarray(values, dtype=object)).score[0]


def _stamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def detect_file(src: Path, dst: Path, params: EnsembleParams | None = None) -> int:
    """Score ``src`` (``timestamp,value``) into ``dst``; returns the number of rows."""
    with open(src, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{src}: expected a header 'timestamp,value'")
        rows = [row for row in reader if row]
    stamps = [_stamp(row[0]) for row in rows]
    values = [row[1] if len(row) > 1 else "" for row in rows]
    scores = score_values(values, stamps, params)
    with open(dst, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*header, "anomaly_score"])
        for row, score in zip(rows, scores, strict=True):
            writer.writerow([*row, f"{score:.6f}"])
    return len(rows)
