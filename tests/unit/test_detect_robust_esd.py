"""Rolling median/MAD and seasonal decomposition + generalised ESD: found shifts, quiet on normal
data, NaN-safe, causal and the same in any slicing."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus.detect.esd import SeasonalEsd, critical_values, esd_score, esd_scores, t_quantile
from lazarus.detect.robust import RollingMad

DAY = 96  # a short "day" keeps the examples small
WINDOW = 64


def noise(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def quantised(seed: int, n: int) -> np.ndarray:
    """A metric that moves in whole ticks and mostly sits on one value: plain MAD is 0."""
    return 50.0 + np.round(noise(seed, n, 0.4))


Make = Callable[..., RollingMad | SeasonalEsd]  # n_series (default 1) -> a fresh detector
DETECTORS: dict[str, Make] = {
    "mad": lambda n=1: RollingMad(n, window=WINDOW),
    "h-esd": lambda n=1: SeasonalEsd(n, 0, window=WINDOW),
    "s-h-esd": lambda n=1: SeasonalEsd(n, DAY, window=WINDOW),
}
detectors = pytest.mark.parametrize("make", DETECTORS.values(), ids=DETECTORS.keys())


# --- both detectors: the behaviour every detector owes -------------------------------------


@detectors
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(400, 600),
    size=st.floats(10.0, 1000.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_a_level_shift_is_found_at_once(
    make: Make, seed: int, at: int, size: float, sign: float
) -> None:
    x = noise(seed, at + 50)
    x[at:] += sign * size
    score = make().update(x)[0]
    assert score[at : at + 3].max() > 0.5
    assert score[at : at + 3].max() > score[:at].max()


@detectors
@settings(max_examples=10, deadline=None)
@given(value=st.floats(-1e9, 1e9), n=st.integers(1, 400))
def test_a_constant_series_raises_nothing(make: Make, value: float, n: int) -> None:
    assert (make().update(np.full(n, value)) == 0).all()


@detectors
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    holes=st.lists(st.integers(0, 499), max_size=80),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_nan_and_inf_never_crash_and_score_0(
    make: Make, seed: int, holes: list[int], bad: float
) -> None:
    x = noise(seed, 500) + 10
    x[holes] = bad
    score = make().update(x)[0]
    assert np.isfinite(score).all() and ((score >= 0) & (score <= 1)).all()
    assert (score[holes] == 0).all()


@detectors
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(1, 399), max_size=8),
    holes=st.lists(st.integers(0, 399), max_size=20),
)
def test_causal_and_the_same_in_any_slicing(
    make: Make, seed: int, cuts: list[int], holes: list[int]
) -> None:
    x = noise(seed, 400)
    x[250:] += 30  # something to score
    x[holes] = np.nan
    whole = make().update(x)[0]
    stream = make()
    bounds = [0, *sorted(set(cuts)), 400]
    parts = [stream.update(x[a:b])[0] for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(make().update(x[:300])[0], whole[:300])  # appending changes none


@detectors
def test_many_series_score_as_each_alone(make: Make) -> None:
    block = np.vstack([noise(s, 300) * (s + 1) + 100 * s for s in range(3)])
    block[1, 200:] += 50
    block[2, [10, 150, 151]] = np.nan
    alone = np.vstack([make().update(row)[0] for row in block])
    np.testing.assert_array_equal(make(3).update(block), alone)


# --- rolling median/MAD ------------------------------------------------------------------------


def test_plain_mad_collapses_on_a_quantised_metric_the_floor_does_not() -> None:
    x = quantised(1, 2000)
    x[1700:] += 6.0
    window = x[1700 - 256 : 1700]
    assert np.median(np.abs(window - np.median(window))) == 0.0  # plain MAD: every tick is inf z
    score = RollingMad(1).update(x)[0]
    one_tick = np.abs(x[256:1700] - 50.0) <= 1.0
    assert one_tick.mean() > 0.99 and score[256:1700][one_tick].max() < 0.5  # moderate, not inf
    assert score[1700:1705].min() > 0.5


def test_rolling_mad_needs_a_full_window_of_finite_values_before_it_scores() -> None:
    x = noise(4, 100)
    x[:10] = np.nan
    score = RollingMad(1, window=WINDOW).update(x)[0]
    assert (score[: 10 + WINDOW] == 0).all() and score[10 + WINDOW :].any()


# --- seasonal decomposition + generalised ESD -------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.95, 1, 6.313752),
        (0.975, 2, 4.302653),
        (0.95, 5, 2.015048),
        (0.975, 10, 2.228139),
        (0.995, 10, 3.169273),
        (0.999, 20, 3.551808),
        (0.975, 30, 2.042272),
        (0.975, 1000, 1.962339),
    ],
)
def test_t_quantile_matches_the_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, rel=1e-6)


def test_critical_values_match_nist_and_grubbs() -> None:
    # NIST/SEMATECH handbook 1.3.5.17.3, generalised ESD example: n = 54, alpha = 0.05.
    nist = [3.159, 3.151, 3.144, 3.136, 3.128, 3.120, 3.111, 3.103, 3.094, 3.085]
    np.testing.assert_allclose(critical_values(54, 10, 0.05), nist, atol=1.5e-3)
    # lambda_1 is Grubbs' two-sided critical value.
    for n, grubbs in [(10, 2.290), (20, 2.709), (50, 3.128), (100, 3.384)]:
        assert critical_values(n, 1, 0.05)[0] == pytest.approx(grubbs, abs=2e-3)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(40, 160),
    ticks=st.booleans(),
    floor=st.floats(1e-9, 1.0),  # a floor of 2 can hide every outlier of rounded t(2) noise
)
def test_testing_only_the_extremes_gives_the_full_tests_answer(
    seed: int, width: int, ticks: bool, floor: float
) -> None:
    rng = np.random.default_rng(seed)
    windows = rng.standard_t(2, (300, width))  # heavy tails: many real outliers
    if ticks:
        windows = np.round(windows)  # ties everywhere
    windows[rng.random(windows.shape) < 0.05] = np.nan  # a residual ring still filling
    floors = np.full(300, floor)
    naive = np.array([esd_score(w, floor, 0.05, 0.05) for w in windows])
    np.testing.assert_array_equal(esd_scores(windows, floors, 0.05, 0.05), naive)
    assert (naive > 0.5).any()  # the comparison covered outliers


@settings(max_examples=8, deadline=None)
@given(
    amplitude=st.floats(0.1, 1e4),
    phase=st.floats(0.0, 6.3),
    level=st.floats(-1e3, 1e3),
)
def test_a_pure_seasonal_series_raises_nothing_with_the_right_period(
    amplitude: float, phase: float, level: float
) -> None:
    t = np.arange(DAY * 8)
    x = level + amplitude * np.sin(2 * np.pi * t / DAY + phase)
    assert (SeasonalEsd(1, DAY, window=WINDOW).update(x) < 0.01).all()


def test_a_spike_that_only_the_season_reveals_is_found() -> None:
    t = np.arange(DAY * 10)
    x = 10 * np.sin(2 * np.pi * t / DAY) + noise(5, len(t), 0.2)
    at = DAY * 8 + DAY // 4  # the daily peak ...
    x[at] -= 10  # ... at the level of the mean: unremarkable against the trend alone
    seasonal = SeasonalEsd(1, DAY, window=WINDOW).update(x)[0]
    assert seasonal[at] > 0.5
    assert (seasonal[DAY * 2 :] > 0.5).sum() <= 3
    assert SeasonalEsd(1, 0, window=WINDOW).update(x)[0][at] < 0.5  # the trend alone misses it


def test_esd_is_quiet_on_a_quantised_metric_and_finds_its_shift() -> None:
    x = quantised(6, 3000)
    x[2500:] += 6.0
    score = SeasonalEsd(1, 0).update(x)[0]
    assert (score[:2500] > 0.5).mean() < 0.002
    assert score[2500:2503].max() > 0.5


def test_esd_waits_for_a_trend_window_and_a_period() -> None:
    x = noise(7, 400)
    x[:5] = np.nan
    x[5 + WINDOW + DAY + 40] += 50
    score = SeasonalEsd(1, DAY, window=WINDOW).update(x)[0]
    assert (score[: 5 + WINDOW + DAY] == 0).all()
    assert score[5 + WINDOW + DAY + 40] > 0.5


def test_a_spike_right_after_a_large_ordinary_point_is_still_the_outlier() -> None:
    """Once the newest point is removed, the point before it is last: it must not take its place."""
    x = 100.0 + np.random.default_rng(9).normal(0.0, 1.0, 700)
    x[499], x[500] = 102.6, 112.0
    score = SeasonalEsd(1, 0).update(x)[0]
    assert score[500] > 0.7 and score[499] < 0.5
