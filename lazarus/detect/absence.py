"""Absence: a series that stops reporting.

A gap is any point that is not a finite number (see ``clean``). The score is the length of the
current run of gaps over ``after`` (capped at 1), so a label (score 1) means the series has
been silent for ``after`` points in a row; it drops to 0 with the next real value. State: the
run length per series, so a watch cycle costs O(new points).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.clean import as_block


class Absence:
    def __init__(self, n_series: int, after: int = 3):
        self.after = max(int(after), 1)
        self.run = np.zeros(n_series, dtype=np.int64)

    def update(self, values: object) -> np.ndarray:
        """``(series x time)`` values -> score in [0, 1] (1 = silent for ``after`` points)."""
        block = as_block(values)
        gap = ~np.isfinite(block)
        t = np.arange(1, block.shape[1] + 1)
        # Position of the last real value at or before each point; 0 = none in this block.
        last = np.maximum.accumulate(np.where(gap, 0, t), axis=1)
        run = np.where(last > 0, t - last, t + self.run[:, None])
        if block.shape[1]:
            self.run = run[:, -1]
        return np.minimum(run / self.after, 1.0)
