"""CUSUM change points and rate of change."""

from __future__ import annotations

import numpy as np

from lazarus.detect.cusum import Cusum, RateOfChange
from lazarus.detect.state import dumps, loads


def noise(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


def test_cusum_finds_a_small_persistent_shift_a_z_score_would_miss() -> None:
    x = noise(0, 1500)
    x[1000:] += 1.5  # 1.5 sigma: no single point stands out
    score = Cusum(1).update(x)[0]
    assert score[1000:1040].max() == 1.0
    assert score[300:1000].max() < 1.0


def test_cusum_reports_each_lasting_shift_once_then_the_next_one() -> None:
    x = noise(4, 4000)
    x[1000:] += 3.0
    x[2500:] -= 6.0  # a second change, below where the series started
    fired = np.flatnonzero(Cusum(1).update(x)[0] >= 1.0)
    assert len(fired) == 2, fired
    assert 1000 <= fired[0] < 1020 and 2500 <= fired[1] < 2520


def test_cusum_finds_a_variance_change_and_reports_it_once() -> None:
    x = noise(1, 3000)
    x[1000:] *= 4
    score = Cusum(1).update(x)[0]
    fired = np.flatnonzero(score >= 1.0)
    assert len(fired) == 1 and 1000 <= fired[0] < 1030, fired
    assert score[300:1000].max() < 1.0


def test_cusum_is_the_same_in_any_slicing_and_survives_gaps() -> None:
    x = noise(2, 600)
    x[[5, 50, 51, 300]] = np.nan
    whole = Cusum(1).update(x)[0]
    stream = Cusum(1)
    parts = [stream.update(x[i : i + 37])[0] for i in range(0, 600, 37)]
    np.testing.assert_allclose(np.concatenate(parts), whole)
    assert np.isfinite(whole).all() and whole[50] == 0


def test_cusum_state_pickled_before_relearning_still_loads() -> None:
    x = noise(5, 1500)
    x[1000:] += 3.0
    old = Cusum(1)
    old.update(x[:900])
    del old.relearn, old.sample  # what a cohort stored by the previous release holds
    loaded = loads(dumps(old))
    assert np.flatnonzero(loaded.update(x[900:])[0] >= 1.0).tolist() == [
        i - 900 for i in np.flatnonzero(Cusum(1).update(x)[0] >= 1.0)
    ]


def test_rate_of_change_flags_a_jump_not_a_ramp() -> None:
    x = np.linspace(0, 100, 800) + noise(3, 800) * 0.1
    x[600] += 20
    score = RateOfChange(1).update(x)[0]
    assert score[600] > 0.8 and score[100:600].max() < 0.5
    chunked = RateOfChange(1)
    parts = [chunked.update(x[None, i : i + 50])[0] for i in range(0, 800, 50)]
    np.testing.assert_allclose(np.concatenate(parts), score)


def test_rate_of_change_ignores_the_step_into_the_first_value() -> None:
    score = RateOfChange(1).update([[np.nan, np.nan, 1e6, 1e6 + 1]])[0]
    assert (score[:3] == 0).all()
