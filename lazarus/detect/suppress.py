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

from lazarus.detect.clean import running

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
        total = offset + t_total
        n_blocks = -(-total // BLOCK)
        # Lay the points on the block grid: pad the open block's head with its running max,
        # then take the running max inside each block.
        grid = np.zeros((n_blocks, BLOCK, n))
        flat = grid.reshape(n_blocks * BLOCK, n)
        flat[:offset] = self.open
        flat[offset:total] = scores
        for block in grid:
            running(np.maximum, block)
        # Max of the `blocks` complete blocks before each block.
        maxima = np.vstack([self.done, grid[:, -1]])
        previous = _window_maxima(maxima, self.blocks, n_blocks)
        # Max of everything before each point: the earlier blocks, then the same block so far.
        recent = np.empty_like(grid)
        recent[:, 0] = previous
        np.maximum(grid[:, :-1], previous[:, None, :], out=recent[:, 1:])
        out = np.subtract(scores, recent.reshape(n_blocks * BLOCK, n)[offset:total])
        np.maximum(out, 0.0, out=out)
        # Carry the state forward.
        complete = total // BLOCK
        if complete:
            self.done = maxima[complete : complete + self.blocks].copy()
        self.open = flat[total - 1].copy() if total % BLOCK else np.zeros(n)
        self.seen += t_total
        return out


class RunSuppressor:
    """Say a run once: within a run of consecutive points that each scored, a point keeps only
    what it adds to the run's largest score so far. State: that score per series."""

    def __init__(self, n_series: int):
        self.top = np.zeros(n_series)

    def update(self, scores: np.ndarray) -> np.ndarray:
        """``(time x series)`` scores >= 0 -> suppressed scores."""
        out = np.empty_like(scores)
        for t, row in enumerate(scores):
            np.subtract(row, self.top, out=out[t])
            np.maximum(out[t], 0.0, out=out[t])
            self.top = np.where(row > 0, np.maximum(self.top, row), 0.0)
        return out


def _window_maxima(maxima: np.ndarray, width: int, n: int) -> np.ndarray:
    """``[maxima[b : b + width].max(axis=0) for b in range(n)]`` as one array. A watch update
    spans a few blocks: the rows every window shares are reduced once, so a longer look-back
    costs one more row each, not one more row per block."""
    if n > width:
        return np.stack([maxima[b : b + width].max(axis=0) for b in range(n)])
    shared = maxima[n - 1 : width].max(axis=0)
    out = np.empty((n, maxima.shape[1]))
    for b in range(n):
        np.maximum.reduce(maxima[b : n - 1], axis=0, initial=0.0, out=out[b])
        np.maximum(out[b], shared, out=out[b])
        if b:
            np.maximum(out[b], maxima[width : width + b].max(axis=0), out=out[b])
    return out
