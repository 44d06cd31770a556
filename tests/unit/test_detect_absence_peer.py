"""Absence (a series that stops) and peer comparison (a host unlike its group)."""

from __future__ import annotations

import numpy as np

from lazarus.detect.absence import Absence
from lazarus.detect.peer import peer_scores

NAN = np.nan


def test_absence_counts_silence_across_cycles_and_resets_on_a_value() -> None:
    detector = Absence(2, after=3)
    first = detector.update([[1.0, NAN, NAN], [1.0, 2.0, 3.0]])
    second = detector.update([[NAN, NAN, 5.0], [NAN, 1.0, 1.0]])
    assert first[0].tolist() == [0.0, 1 / 3, 2 / 3]
    assert second[0].tolist() == [1.0, 1.0, 0.0]  # silent 3 and 4 points, then back
    assert second[1].tolist() == [1 / 3, 0.0, 0.0]


def test_absence_of_a_series_that_never_reported() -> None:
    assert Absence(1, after=2).update([[NAN, "x", None]])[0].tolist() == [0.5, 1.0, 1.0]


def test_peer_flags_the_one_host_unlike_its_group() -> None:
    rng = np.random.default_rng(0)
    web = 100 + rng.normal(0, 1, (5, 50))
    web[2, 30:] += 40  # web-3 slows down alone
    db = 10 + rng.normal(0, 0.1, (3, 50))
    scores = peer_scores(np.vstack([web, db]), ["web"] * 5 + ["db"] * 3)
    assert (scores[2, 30:] > 0.6).all()  # about 40 MADs out
    assert scores[2, :30].max() < 0.5 and np.delete(scores, 2, axis=0).max() < 0.5


def test_peer_needs_three_reporting_members_and_ignores_gaps() -> None:
    values = np.array([[1.0, NAN, 1.0], [1.0, 1.0, 1.0], [50.0, 50.0, NAN]])
    scores = peer_scores(values, ["g", "g", "g"])
    assert scores[2, 0] > 0.9  # three members: the odd one out
    assert (scores[:, 1:] == 0).all()  # two members reporting: no majority
    assert np.isfinite(scores).all()
