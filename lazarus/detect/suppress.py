"""Say it once: keep only evidence that beats everything the series showed recently.

``out[t] = max(0, s[t] - max(s over the previous ~window points))``: the first point of an
episode keeps (almost) its full score, the rest of the episode scores ~0, so one anomaly pages
once and a threshold on ``out`` counts episodes, not points. The recent maximum is kept as
block maxima (blocks of 32 aligned to the point count) plus the running maximum of the open
block, so the look-back is ``window`` to ``window + 31`` points, the state is O(window / 32)
per series and batch and point-by-point updates agree.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BLOCK = 32


class Suppressor:
    def __init__(self, n_series: int, window: int = 1024):
        self.blocks = max(1, window // BLOCK)
        self.done = np.zeros((self.blocks, n_series))  # maxima of the last complete blocks
        self.open = np.zeros(n_series)  # running maximum of the current block
        self.seen = 0

    def update(self, scores: np.ndarray) -> np.ndarray:
        """``(time x series)`` scores in [0, 1] -> suppressed scores."""
        t_total, n = scores.shape
        if t_total == 0:
            return scores.copy()
        offset = self.seen % BLOCK
        # Lay the points on the block grid: pad the open block's head with its running max.
        pad = np.vstack([np.broadcast_to(self.open, (offset, n)), scores]) if offset else scores
        n_blocks = -(-len(pad) // BLOCK)
        grid = np.zeros((n_blocks * BLOCK, n))
        grid[: len(pad)] = pad
        grid = grid.reshape(n_blocks, BLOCK, n)
        # Max of the earlier points in the same block (exclusive running max).
        inside = np.maximum.accumulate(grid, axis=1)
        before = np.zeros_like(inside)
        before[:, 1:] = inside[:, :-1]
        # Max of the `blocks` complete blocks before each block.
        maxima = np.vstack([self.done, inside[:, -1]])
        previous = sliding_window_view(maxima, self.blocks, axis=0)[:n_blocks].max(axis=-1)
        recent = np.maximum(before, previous[:, None, :]).reshape(-1, n)[offset : offset + t_total]
        out = np.maximum(scores - recent, 0.0)
        # Carry the state forward.
        complete = (offset + t_total) // BLOCK
        if complete:
            self.done = maxima[complete : complete + self.blocks]
        last = inside.reshape(-1, n)[offset + t_total - 1]
        self.open = last if (offset + t_total) % BLOCK else np.zeros(n)
        self.seen += t_total
        return out
