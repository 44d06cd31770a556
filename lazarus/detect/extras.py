"""Detectors a config adds beside the ensemble in the watch (``detectors.anomaly[].also``).

The ensemble is the default because it needs no tuning; some series deserve a second opinion of
another kind, e.g. a slow memory leak that CUSUM adds up long before any point looks odd. Each
extra runs over the same ``(series x time)`` block as its cohort's ensemble, keeps its own state
(pickled with the cohort), and labels a point when its score *reaches* its threshold from below
and it has not labelled in the last ``suppress`` points of that series (the ensemble's say-it-once
look-back): one label per episode, ``<series>_<name>``. A burst of bad points crosses a
threshold again and again; a person wants to hear of it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lazarus.detect.cusum import Cusum, RateOfChange
from lazarus.detect.ensemble import Ensemble, EnsembleParams, Scores
from lazarus.detect.esd import SeasonalEsd
from lazarus.detect.robust import RollingMad
from lazarus.detect.seasonal import Ringed

# ESD's significance for a page: at 0.05 pure noise made an "outlier" every ~5,000 points (a day
# at 15 s); at 0.001 none in 20,000, and an 8-sigma spike still scores 0.61..0.67.
PAGE_ALPHA = 0.001


class Detector(Protocol):
    def update(self, values: object) -> np.ndarray: ...


@dataclass(frozen=True)
class Extra:
    """How to build one kind of extra detector, when it labels, and what it tells a person."""

    make: Callable[[int, EnsembleParams], Detector]
    threshold: float
    meaning: str


EXTRAS: dict[str, Extra] = {
    "change_point": Extra(
        lambda n, p: Cusum(n), 1.0, "a lasting change in level or variance (CUSUM)"
    ),
    "rate_of_change": Extra(
        lambda n, p: RateOfChange(n), 0.5, "a step far larger than its usual steps"
    ),
    "mad": Extra(
        lambda n, p: RollingMad(n), 0.5, "far from the median of its last points (median/MAD)"
    ),
    "esd": Extra(
        lambda n, p: SeasonalEsd(n, p.season, alpha=PAGE_ALPHA),
        0.5,
        "an outlier of its trend and season (generalised ESD)",
    ),
}


@dataclass(frozen=True)
class CohortSpec:
    """What makes series share a cohort: the ensemble's parameters and the extras' names."""

    params: EnsembleParams
    also: tuple[str, ...] = ()


class Cohort:
    """An ensemble and its extras over the same series; pickled whole between watch runs."""

    def __init__(self, n_series: int, spec: CohortSpec):
        unknown = sorted(set(spec.also) - EXTRAS.keys())
        if unknown:
            raise ValueError(f"unknown extra detector(s) {unknown}; known: {sorted(EXTRAS)}")
        self.spec = spec
        self.ensemble = Ensemble(n_series, spec.params)
        self.extras = {name: EXTRAS[name].make(n_series, spec.params) for name in spec.also}
        self.high = {name: np.zeros(n_series, dtype=bool) for name in spec.also}
        self.since = {name: np.full(n_series, spec.params.suppress) for name in spec.also}

    @property
    def n_series(self) -> int:
        return self.ensemble.n_series

    def ringed(self) -> dict[str, Ringed]:
        """The detectors that keep a ring of past rows, by ring name (for ``rings``)."""
        found: dict[str, Ringed] = {}
        if self.ensemble.seasonal is not None:
            found["seasonal"] = self.ensemble.seasonal
        for name, detector in self.extras.items():
            if isinstance(detector, Ringed) and detector.ring_span:
                found[name] = detector
        return found

    def update(self, values: np.ndarray) -> tuple[Scores, dict[str, np.ndarray]]:
        """The ensemble's scores, and per extra the points it labels ``(series x time)``."""
        valid = np.isfinite(values)
        labels: dict[str, np.ndarray] = {}
        for name, detector in self.extras.items():
            above = detector.update(values) >= EXTRAS[name].threshold
            quiet = self.spec.params.suppress
            labels[name] = _rising(self.high[name], self.since[name], quiet, above, valid)
        return self.ensemble.update(values), labels


def _rising(
    high: np.ndarray, since: np.ndarray, quiet: int, above: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Points where ``above`` turns true at least ``quiet`` points after the last label.
    ``high`` and ``since`` (per series, updated in place) carry the state across blocks; a gap
    keeps both, so a missed scrape is no new episode."""
    labels = np.zeros(above.shape, dtype=bool)
    for t in range(above.shape[1]):
        now = np.where(valid[:, t], above[:, t], high)
        since += valid[:, t]
        labels[:, t] = now & ~high & (since >= quiet)
        since[labels[:, t]] = 0
        high[:] = now
    return labels
