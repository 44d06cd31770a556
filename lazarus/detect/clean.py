"""Turning raw series values into something every detector can trust.

Documented behaviour (the same in every detector):

- Input is a ``(series x time)`` block; anything that is not a finite number (NaN, +-inf,
  ``None``, a string that does not parse) is a *gap*.
- A gap carries the series' last finite value forward for the level statistics, scores 0 and
  never updates a detector's learnt state; the absence detector is the one that reports gaps.
- Before a series' first finite value its points are gaps too.

Detectors work on the transposed ``(time x series)`` layout so one time step is a contiguous
row (vectorised over series, cache friendly).
"""

from __future__ import annotations

import numpy as np


def as_block(values: object) -> np.ndarray:
    """A 2-D float64 ``(series x time)`` array; non-numbers become NaN, 1-D is one series."""
    try:
        block = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        block = np.vectorize(_to_float, otypes=[np.float64])(np.asarray(values, dtype=object))
    if block.ndim == 1:
        block = block[None, :]
    if block.ndim != 2:
        raise ValueError(f"expected a (series x time) block, got shape {block.shape}")
    return block


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


class Carry:
    """Per-series last finite value, so gaps can be bridged across calls."""

    def __init__(self, n_series: int):
        self.last = np.full(n_series, np.nan)

    def fill(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(time x series)`` rows -> (gap-free rows, mask of points that were real values)."""
        valid = np.isfinite(rows)
        if valid.all():
            filled = rows
        else:
            seed = np.where(np.isfinite(self.last), self.last, 0.0)
            index = np.where(valid, np.arange(1, len(rows) + 1)[:, None], 0)
            np.maximum.accumulate(index, axis=0, out=index)
            padded = np.vstack([seed[None, :], np.where(valid, rows, 0.0)])
            filled = np.take_along_axis(padded, index, axis=0)
        if len(rows):
            self.last = np.where(valid.any(axis=0), filled[-1], self.last)
        return filled, valid
