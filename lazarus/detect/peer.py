"""Peer comparison: a host that deviates from its peer group at the same moment.

At every time step each series is compared with the median of its group (series given the same
group id, e.g. every web host's latency): ``z = |x - median| / max(1.4826 * MAD, relative *
|median|, floor)``: the relative part gives a group that agrees perfectly a scale, and ``floor`` (in
the series' own unit) one that sits at 0, where otherwise any 1 among 0s would be an outlier. The
score ``z / (z + limit)`` is 0.5 at ``limit`` MADs. Only the current column is used, so it is
causal and stateless; gaps score 0, and a group with fewer than 3 reporting members scores 0
(no majority to deviate from).
"""

from __future__ import annotations

import numpy as np

from lazarus.detect.clean import as_block


def peer_scores(
    values: object,
    groups: list[str],
    limit: float = 5.0,
    relative: float = 0.01,
    floor: float | np.ndarray = 0.0,
) -> np.ndarray:
    """``(series x time)`` values and a group id per series -> score in [0, 1]; ``floor`` is
    one number or one per series (its group's)."""
    block = as_block(values)
    if len(groups) != block.shape[0]:
        raise ValueError(f"{len(groups)} group ids for {block.shape[0]} series")
    floors = np.broadcast_to(np.asarray(floor, dtype=float), (block.shape[0],))
    out = np.zeros(block.shape)
    names = np.array(groups)
    for group in np.unique(names):
        members = np.flatnonzero(names == group)
        x = np.where(np.isfinite(block[members]), block[members], np.nan)
        reporting = np.isfinite(x).sum(axis=0)
        if not (reporting >= 3).any():
            continue
        median, mad = centre(x)
        scale = np.maximum(np.maximum(mad, relative * np.abs(median)), floors[members[0]])
        z = np.abs(x - median) / (scale + 1e-12)
        score = np.where(np.isfinite(z) & (reporting >= 3), z / (z + limit), 0.0)
        out[members] = score
    return out


def centre(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and spread (1.4826 x MAD, the standard deviation for normal data) of each column
    of one group's ``(members x time)`` values, NaN for not reporting."""
    with np.errstate(all="ignore"):  # all-NaN columns are expected for sparse groups
        median = np.nanmedian(x, axis=0)
        return median, np.nanmedian(np.abs(x - median), axis=0) * 1.4826
