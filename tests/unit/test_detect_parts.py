"""The ensemble's parts against plain reference implementations."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus.detect.calibrate import BLOCK as RANK_BLOCK
from lazarus.detect.calibrate import TailRank, bin_of
from lazarus.detect.clean import Carry, as_block, running, transpose_into
from lazarus.detect.ewm import Ewm, MovingMean, RunningMean
from lazarus.detect.seasonal import Seasonal
from lazarus.detect.suppress import BLOCK, RunSuppressor, Suppressor


def slices(n: int, sizes: list[int]) -> list[slice]:
    out, start = [], 0
    while start < n:
        step = sizes[len(out) % len(sizes)]
        out.append(slice(start, start + step))
        start += step
    return out


def reference_suppress(s: np.ndarray, blocks: int) -> np.ndarray:
    """Point by point: subtract the max over the `blocks` complete blocks before the point's block
    and the earlier points of its own block."""
    out = np.zeros_like(s)
    for t in range(len(s)):
        first = (t // BLOCK - blocks) * BLOCK
        recent = s[max(first, 0) : t]
        out[t] = max(0.0, s[t] - (recent.max() if len(recent) else 0.0))
    return out


@settings(max_examples=20, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=400),
    sizes=st.lists(st.integers(1, 90), min_size=1, max_size=5),
    window=st.sampled_from([32, 64, 160]),
)
def test_suppressor_matches_reference_in_any_slicing(
    values: list[float], sizes: list[int], window: int
) -> None:
    s = np.array(values)
    expected = reference_suppress(s, window // BLOCK)
    sup = Suppressor(1, window)
    got = np.concatenate([sup.update(s[part][:, None])[:, 0] for part in slices(len(s), sizes)])
    np.testing.assert_allclose(got, expected, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.5]), min_size=1, max_size=60),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
)
def test_run_suppressor_says_each_run_once_in_any_slicing(
    values: list[float], sizes: list[int]
) -> None:
    """Point by point: a point keeps what it adds to the largest score of the run of scoring
    points just before it; a point that scored 0 ends the run."""
    s = np.array(values)
    expected, top = [], 0.0
    for v in s:
        expected.append(max(0.0, v - top))
        top = max(top, v) if v > 0 else 0.0
    sup = RunSuppressor(1)
    got = np.concatenate([sup.update(s[part][:, None])[:, 0] for part in slices(len(s), sizes)])
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_suppressor_says_an_episode_once() -> None:
    s = np.zeros(300)
    s[100:140] = np.linspace(0.5, 0.9, 40)
    out = Suppressor(1, 1024).update(s[:, None])[:, 0]
    assert out[100] == 0.5
    assert out[101:].max() < 0.02  # the rest of the episode only adds its small increments


def test_tail_rank_scores_a_record_by_history_length() -> None:
    rng = np.random.default_rng(3)
    x = rng.exponential(1.0, (2 * RANK_BLOCK * 10, 1))
    x[-1] = 1e4
    out = TailRank(1, warmup=10).update(x, np.ones_like(x, bool))
    history = len(x) - RANK_BLOCK  # the last block is ranked against the earlier ones
    assert np.isclose(out[-1, 0], np.log10(history + 1) / 4, atol=1e-6)
    typical = np.median(out[RANK_BLOCK:, 0])
    assert 0.02 < typical < 0.15  # a middle value: about half the history is larger


def test_tail_rank_ignores_gaps_and_warmup() -> None:
    x = np.ones((200, 2))
    valid = np.ones_like(x, bool)
    valid[150:, 1] = False
    out = TailRank(2, warmup=100).update(x * 1000, valid)
    assert (out[:100] == 0).all() and (out[150:, 1] == 0).all()


def test_bins_are_monotone_and_bounded() -> None:
    values = np.array([0.0, 1e-5, 0.01, 0.5, 1.0, 2.0, 999.0, 1e6, np.inf])
    bins = bin_of(values)
    assert (np.diff(bins) >= 0).all() and bins[0] == 0 and bins[-1] == bins.max()


def test_as_block_coerces_and_carry_bridges_gaps_across_calls() -> None:
    block = as_block([["1", "x", None, 2.5]])
    assert block.shape == (1, 4) and np.isnan(block[0, 1:3]).all()
    carry = Carry(2)
    filled, valid = carry.fill(np.array([[1.0, np.nan], [np.nan, np.nan]]))
    assert filled.tolist() == [[1.0, 0.0], [1.0, 0.0]] and valid.sum() == 1
    filled, _ = carry.fill(np.array([[np.inf, 7.0]]))
    assert filled.tolist() == [[1.0, 7.0]]


def test_ewm_floor_keeps_a_quantised_metric_finite() -> None:
    x = np.array([5.0] * 50 + [6.0] + [5.0] * 50)[:, None]
    z, steps = Ewm(1, 100).update(x, np.ones_like(x, bool))
    assert np.isfinite(z).all() and 0 < z[50, 0] < 1e6
    assert (steps >= 0).all()


def test_moving_mean_matches_numpy_in_any_slicing() -> None:
    x = np.random.default_rng(0).normal(size=(100, 1))
    mm = MovingMean(1, 5)
    got = np.concatenate([mm.update(x[part]) for part in slices(100, [1, 7, 3])])
    expected = [x[max(0, t - 4) : t + 1].mean() for t in range(100)]
    np.testing.assert_allclose(got[:, 0], expected)


def test_running_mean_matches_numpy_and_any_slicing_bit_for_bit() -> None:
    x = np.random.default_rng(1).random((700, 3)).astype(np.float32).astype(float)
    whole = RunningMean(3, 200).update(x)
    parts = RunningMean(3, 200)
    sliced = np.concatenate([parts.update(x[part]) for part in slices(700, [1, 64, 250, 3])])
    np.testing.assert_array_equal(sliced, whole)
    expected = [x[max(0, t - 199) : t + 1].mean(axis=0) for t in range(700)]
    np.testing.assert_allclose(whole, expected, rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 40), st.sampled_from([0, 1, 5, 63, 64, 150])),
    seed=st.integers(0, 2**32 - 1),
    ufunc=st.sampled_from([np.add, np.maximum, np.minimum]),
)
def test_running_is_numpys_accumulate_bit_for_bit(shape: tuple, seed: int, ufunc: np.ufunc) -> None:
    x = np.random.default_rng(seed).standard_t(1, shape)
    np.testing.assert_array_equal(running(ufunc, x.copy()), ufunc.accumulate(x, axis=0))


def test_transpose_into_copies_either_orientation() -> None:
    wide = np.random.default_rng(0).normal(size=(3, 1300))
    for src in (wide, wide.T):
        np.testing.assert_array_equal(transpose_into(np.empty(src.shape[::-1]), src), src.T)


def test_carry_fills_runs_of_gaps_from_the_last_value() -> None:
    carry = Carry(3)
    carry.fill(np.array([[4.0, 5.0, np.nan]]))
    rows = np.array([[np.nan, 1.0, np.nan], [np.nan, np.nan, 2.0], [3.0, np.nan, np.nan]])
    filled, valid = carry.fill(rows)
    assert filled.tolist() == [[4.0, 1.0, 0.0], [4.0, 1.0, 2.0], [3.0, 1.0, 2.0]]
    assert valid.sum() == 3 and np.isnan(rows[0, 0])  # the input is left alone


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    period=st.integers(1, 30),
    sizes=st.lists(st.integers(1, 70), min_size=1, max_size=5),
)
def test_seasonal_ring_matches_one_pass_in_any_slicing(
    seed: int, period: int, sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 2)).cumsum(axis=0)
    valid = rng.random(x.shape) > 0.05
    floor = np.full(x.shape, 0.1)
    whole = Seasonal(2, period, 50).update(x, valid, floor)
    ring = Seasonal(2, period, 50)
    parts = [ring.update(x[part], valid[part], floor[part]) for part in slices(200, sizes)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_a_faded_history_values_a_record_by_its_memory_not_its_length() -> None:
    rng = np.random.default_rng(4)
    x = rng.exponential(1.0, (RANK_BLOCK * 200, 1))
    x[-1] = 1e4
    out = TailRank(1, memory=1000).update(x, np.ones_like(x, bool))
    assert np.log10(900) / 4 < out[-1, 0] < np.log10(1100) / 4  # not log10(12,800) / 4


def test_a_history_stored_before_fading_carries_over() -> None:
    rng = np.random.default_rng(5)
    x = rng.exponential(1.0, (RANK_BLOCK * 4, 1))
    valid = np.ones_like(x, bool)
    old = TailRank(1)
    old.update(x, valid)
    stored = {k: copy.deepcopy(v) for k, v in vars(old).items() if k not in ("keep", "logs")}
    stored["above"] = stored["above"].astype(np.int32)  # as the released version kept it
    restored = TailRank.__new__(TailRank)
    restored.__setstate__(stored)
    np.testing.assert_array_equal(restored.update(x, valid), old.update(x, valid))
