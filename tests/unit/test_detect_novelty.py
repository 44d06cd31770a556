"""The shape-novelty view of `lazarus detect`: a known shape is quiet, a new one is not."""

from __future__ import annotations

import numpy as np
import pytest

from lazarus.detect.novelty import novelty


def wave(n: int, period: int = 48, seed: int = 0) -> np.ndarray:
    """A repeating pattern (a square-ish wave) with a little noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 10 + 5 * np.sign(np.sin(2 * np.pi * t / period)) + rng.normal(0, 0.05, n)


def test_a_repeated_pattern_is_quiet_and_a_new_shape_is_not() -> None:
    x = wave(3000)
    quiet = novelty(x)
    x[2400:2460] = np.linspace(5, 15, 60)  # a ramp within the usual range: no new value
    loud = novelty(x)
    # Once a period has been seen, only the noise differs between repeats; the ramp's distance
    # ranks above all but the first points' (which had no period to compare with).
    assert np.quantile(quiet[600:], 0.99) < 0.25
    assert loud[2400:2480].max() > max(0.45, quiet[600:].max() + 0.1)
    assert loud[:2400].tolist() == quiet[:2400].tolist()


def test_appending_points_never_changes_earlier_scores() -> None:
    x = wave(2000, seed=1)
    x[1500:1530] = 12.0
    whole = novelty(x)
    for cut in (1, 30, 700, 1234, 1510):
        assert novelty(x[:cut]).tolist() == whole[:cut].tolist()


def test_the_score_does_not_depend_on_the_units() -> None:
    x = wave(1500, seed=2)
    x[1000:1040] = 7.0
    # x 8 and + 1024 are exact in floating point: the same ranks, bit for bit.
    assert novelty(8 * x + 1024).tolist() == novelty(x).tolist()


def test_gaps_and_short_series_do_not_crash_and_score_zero() -> None:
    x = wave(1500, seed=3)
    x[:40] = np.nan
    x[500:560] = np.nan
    x[900] = np.inf
    x[1200:1240] = 14.0
    out = novelty(x)
    assert out.shape == x.shape and np.isfinite(out).all()
    assert (out[~np.isfinite(x)] == 0).all()
    assert out[1200:1260].max() > 0.3  # the new shape after the gaps is still seen
    assert (novelty(np.full(50, np.nan)) == 0).all()
    assert (novelty(np.full(500, 3.5)) == 0).all()  # no range: nothing to compare
    assert novelty(np.array([1.0, 2.0, 3.0])).tolist() == [0.0, 0.0, 0.0]


def test_a_shape_older_than_the_memory_is_new_again() -> None:
    x = wave(3000, seed=4)
    x[864:894] = 12.0  # the same odd shape twice, 30 periods (1,440 points) apart
    x[2304:2334] = 12.0
    near = novelty(x, memory=2000)[2304:2344].max()
    far = novelty(x, memory=1000)[2304:2344].max()
    assert near < 0.3 and far > near + 0.1


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        novelty(np.zeros(10), width=0)
