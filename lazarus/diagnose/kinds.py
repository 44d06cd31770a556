"""Recurring kinds of incident: the history clustered by what its incidents looked like.

Each incident's facts (:mod:`.features`) are weighted by rarity (idf: a word every incident
logs says nothing) and scaled to unit length; incidents then merge bottom-up by average
linkage on cosine distance until the closest two groups are further apart than ``threshold``.
No random start and ties go to the lowest index, so the same history gives the same kinds.
A kind is named by its most distinctive facts: common inside it, rare outside.

Average linkage costs O(n^2) memory and O(n^3) time: fine for the few thousand incidents a
history holds, the reason :data:`MAX_INCIDENTS` exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lazarus.diagnose.features import Example, Vocabulary, features, line_facts

THRESHOLD = 0.8  # average cosine distance above which two groups are different kinds
NAMED_BY = 3  # distinctive facts naming a kind
MAX_INCIDENTS = 3000


@dataclass(frozen=True)
class Kind:
    """One recurring kind: its naming facts and its incidents (indices into the history)."""

    features: tuple[str, ...]
    members: tuple[int, ...]

    @property
    def name(self) -> str:
        return " + ".join(self.features) or "(nothing distinctive)"


def telling_line(example: Example, kind: Kind) -> str:
    """The first log line of ``example`` that shows a fact naming ``kind`` ('' if none does)."""
    wanted = set(kind.features)
    return next((line for line in example.lines if wanted & line_facts(line)), "")


def vectors(examples: Sequence[Example]) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """The vocabulary, the 0/1 facts and their idf-weighted unit rows."""
    bags = [features(e) for e in examples]
    vocabulary = Vocabulary.build(bags)
    present = vocabulary.matrix(bags)
    idf = np.log((1 + len(bags)) / (1 + present.sum(axis=0))) + 1.0
    weighted = present * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    return vocabulary, present, weighted / np.where(norms > 0, norms, 1.0)


def average_linkage(unit: np.ndarray, threshold: float) -> np.ndarray:
    """A group label per row: merge the closest groups while their mean distance <= threshold."""
    n = len(unit)
    distance = 1.0 - unit @ unit.T
    np.fill_diagonal(distance, np.inf)
    size = np.ones(n)
    label = np.arange(n)
    for _ in range(n - 1):
        flat = int(np.argmin(distance))
        i, j = divmod(flat, n)
        if distance[i, j] > threshold:
            break
        i, j = min(i, j), max(i, j)
        merged = (size[i] * distance[i] + size[j] * distance[j]) / (size[i] + size[j])
        distance[i, :] = merged
        distance[:, i] = merged
        distance[i, i] = np.inf
        distance[j, :] = np.inf
        distance[:, j] = np.inf
        size[i] += size[j]
        label[label == j] = i
    return label


def cluster(examples: Sequence[Example], *, threshold: float = THRESHOLD) -> list[Kind]:
    """The kinds of ``examples``, largest first (ties: the one seen first)."""
    if len(examples) > MAX_INCIDENTS:
        raise ValueError(f"{len(examples)} incidents; cluster at most {MAX_INCIDENTS} at once")
    if not examples:
        return []
    vocabulary, present, unit = vectors(examples)
    label = average_linkage(unit, threshold)
    kinds = []
    for group in np.unique(label):
        inside = label == group
        outside = present[~inside].mean(axis=0) if (~inside).any() else 0.0
        lift = present[inside].mean(axis=0) - outside
        order = sorted(range(len(lift)), key=lambda f: (-lift[f], vocabulary.names[f]))
        named = tuple(vocabulary.names[f] for f in order[:NAMED_BY] if lift[f] > 0)
        kinds.append(Kind(named, tuple(int(i) for i in np.flatnonzero(inside))))
    return sorted(kinds, key=lambda k: (-len(k.members), k.members[0]))
