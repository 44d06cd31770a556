"""Peer comparison in the watch: a series unlike the same series on its peers, cycle after cycle.

Peers are the series of one name whose labels agree except ``host`` and ``instance`` (so the
same metric on the hosts of one service). Each cycle the newest value of every reporting series
is scored against its group with ``peer_scores``; a series scoring above 0.5 (``limit`` spreads
from the median) counts one cycle of its streak, one at or below resets it. At ``for`` cycles in
a row it is an outlier, once: not again while the streak lasts.

The spread is never less than the group's *typical* spread (an exponential mean of its MADs,
about the last 20 cycles). With three hosts the MAD of one moment is the smaller of two gaps and
often near 0, and random noise alone then made outliers of hosts that were merely the farthest
of three: on simulated noise, 0.2 (independent) to 3 (persistent) false outliers per host per
1,000 cycles, and 0 to 0.15 with the typical spread. A host that really stands apart does not
widen it: the MAD ignores one member of three.

A series its own ensemble labelled in a cycle where it is also unlike its peers has had that
episode said: its streak passes ``for`` at once, so one fault is not paged twice under two
names. A series without a finite value this cycle, or in a group with fewer than 3 reporting
members, holds its streak (a missed scrape neither counts nor breaks it). Streaks and typical
spreads live in the store beside the detector's per-series rows, so separate watch runs carry
them on; a group that has not reported for a day is forgotten.
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lazarus.config import PeerSettings
from lazarus.detect.peer import centre, peer_scores

UNLIKE = 0.5  # peer score of a value exactly ``limit`` spreads from its group's median
PEER_LABELS = ("host", "instance")  # the labels that tell peers apart; all others must agree
TYPICAL = 0.05  # weight of this cycle's MAD in a group's typical spread (~20 cycles)
FORGET_GROUP = 86400.0  # seconds without a report before a group's typical spread is dropped


@dataclass(frozen=True)
class Latest:
    """A series' newest point of this cycle."""

    series: str
    labels: dict[str, str]
    at: float
    value: float


@dataclass(frozen=True)
class Outlier:
    """A series that has been unlike its peers for ``for`` cycles; ``median`` and ``peers`` are
    of the other reporting members of its group."""

    key: str
    at: float
    value: float
    median: float
    peers: int


def peer_outliers(
    db: sqlite3.Connection,
    latest: dict[str, Latest],
    settings: Callable[[str], PeerSettings],
    said: set[str] = frozenset(),
) -> list[Outlier]:
    """Update the peer streaks with this cycle's newest points (inside the caller's
    transaction) and return the series whose streak reached ``for`` in this cycle; ``said``
    holds the keys the ensemble labelled this cycle."""
    state = _PeerState.load(db)
    by_name: dict[str, list[str]] = defaultdict(list)
    for key, point in latest.items():
        by_name[point.series].append(key)
    outliers: list[Outlier] = []
    for name, keys in by_name.items():
        chosen = settings(name)
        if chosen.enabled:
            outliers += state.score(keys, latest, chosen, said)
        else:
            state.moved.update(dict.fromkeys(keys, 0))
    state.save(db)
    return outliers


@dataclass
class _PeerState:
    """The stored streaks and typical spreads, and what this cycle changed of them."""

    streaks: dict[str, int]
    spreads: dict[str, float]
    moved: dict[str, int] = field(default_factory=dict)
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)  # group -> spread, at

    @classmethod
    def load(cls, db: sqlite3.Connection) -> _PeerState:
        db.execute("DELETE FROM detector_peers WHERE key NOT IN (SELECT key FROM detector_series)")
        return cls(
            dict(db.execute("SELECT key, streak FROM detector_peers")),
            dict(db.execute("SELECT grp, spread FROM detector_peer_groups")),
        )

    def save(self, db: sqlite3.Connection) -> None:
        db.executemany(
            "DELETE FROM detector_peers WHERE key=?", [(k,) for k, n in self.moved.items() if not n]
        )
        db.executemany(
            "INSERT OR REPLACE INTO detector_peers VALUES (?,?)",
            [(k, n) for k, n in self.moved.items() if n],
        )
        db.executemany(
            "INSERT OR REPLACE INTO detector_peer_groups VALUES (?,?,?)",
            [(g, spread, at) for g, (spread, at) in self.seen.items()],
        )
        if self.seen:
            newest = max(at for _, at in self.seen.values())
            db.execute("DELETE FROM detector_peer_groups WHERE at < ?", (newest - FORGET_GROUP,))

    def score(
        self, keys: list[str], latest: dict[str, Latest], chosen: PeerSettings, said: set[str]
    ) -> list[Outlier]:
        """Score one name's series against their groups; their new streaks go into ``moved``."""
        groups = [_group_of(latest[k]) for k in keys]
        values = np.array([latest[k].value for k in keys], dtype=float)
        reporting: dict[str, list[int]] = defaultdict(list)
        for i, group in enumerate(groups):
            if math.isfinite(values[i]):
                reporting[group].append(i)
        floors = np.full(len(keys), chosen.floor)
        for group, members in reporting.items():
            if len(members) >= 3:
                typical = self._typical(group, values[members], latest[keys[members[0]]].at)
                floors[[i for i, g in enumerate(groups) if g == group]] = max(chosen.floor, typical)
        scores = peer_scores(values[:, None], groups, chosen.limit, floor=floors)[:, 0]
        outliers: list[Outlier] = []
        for i, key in enumerate(keys):
            members = reporting[groups[i]]
            if i not in members or len(members) < 3:
                continue  # no verdict this cycle: the streak holds
            unlike = scores[i] > UNLIKE
            self.moved[key] = self.streaks.get(key, 0) + 1 if unlike else 0
            if unlike and key in said:
                self.moved[key] = max(self.moved[key], chosen.for_ + 1)
            if self.moved[key] == chosen.for_:
                others = [values[j] for j in members if j != i]
                point = latest[key]
                outliers.append(
                    Outlier(key, point.at, point.value, float(np.median(others)), len(others))
                )
        return outliers

    def _typical(self, group: str, values: np.ndarray, at: float) -> float:
        """The group's typical spread before this cycle, folding this cycle's MAD in."""
        spread = float(centre(values[:, None])[1][0])
        typical = self.spreads.get(group, spread)
        self.seen[group] = ((1 - TYPICAL) * typical + TYPICAL * spread, at)
        return typical


def _group_of(point: Latest) -> str:
    """The group id: the name and every label but those that tell peers apart."""
    labels = sorted((k, v) for k, v in point.labels.items() if k not in PEER_LABELS)
    return repr((point.series, labels))
