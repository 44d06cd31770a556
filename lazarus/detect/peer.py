"""Peer comparison: a host that deviates from its peer group at the same moment.

At every time step each series is compared with the median of its group (series given the same
group id, e.g. every web host's latency): ``z = |x - median| / max(1.4826 * MAD, floor)`` where
the floor is ``relative * |median|`` so a group that agrees perfectly still has a scale. The
score ``z / (z + limit)`` is 0.5 at ``limit`` MADs. Only the current column is used, so it is
causal and stateless; gaps score 0, and a group with fewer than 3 reporting members scores 0
(no majority to deviate from).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.clean import as_block


def peer_scores(
    values: object, groups: list[str], limit: float = 5.0, relative: float = 0.01
) -> np.ndarray:
    """``(series x time)`` values and a group id per series -> score in [0, 1]."""
    block = as_block(values)
    if len(groups) != block.shape[0]:
        raise ValueError(f"{len(groups)} group ids for {block.shape[0]} series")
    out = np.zeros(block.shape)
    names = np.array(groups)
    for group in np.unique(names):
        members = np.flatnonzero(names == group)
        x = np.where(np.isfinite(block[members]), block[members], np.nan)
        reporting = np.isfinite(x).sum(axis=0)
        if not (reporting >= 3).any():
            continue
        with np.errstate(all="ignore"):  # all-NaN columns are expected for sparse groups
            median = np.nanmedian(x, axis=0)
            mad = np.nanmedian(np.abs(x - median), axis=0) * 1.4826
        scale = np.maximum(mad, relative * np.abs(median)) + 1e-12
        z = np.abs(x - median) / scale
        score = np.where(np.isfinite(z) & (reporting >= 3), z / (z + limit), 0.0)
        out[members] = score
    return out
