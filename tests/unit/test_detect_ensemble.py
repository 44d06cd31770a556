"""Properties of the detection ensemble: found shifts, quiet on normal data, NaN-safe, causal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus.detect.ensemble import Ensemble, EnsembleParams

DAY = 96  # a short "day" keeps the examples small


def noise(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(300, 500),
    size=st.floats(8.0, 1000.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_a_level_shift_is_as_surprising_as_anything_seen(
    seed: int, at: int, size: float, sign: float
) -> None:
    x = noise(seed, at + 50)
    x[at:] += sign * size
    evidence = Ensemble(1).update(x).evidence[0]
    # Beyond every earlier value in every view; histories are merged in blocks of 64 points.
    cap = np.log10(at - 64) / 4.0
    assert evidence[at : at + 5].max() >= cap - 0.01
    assert evidence[at : at + 5].max() > evidence[200:at].max() - 0.01


def test_a_level_shift_on_a_quiet_metric_is_labelled_at_once() -> None:
    x = 50.0 + np.round(noise(1, 2000, 0.4))  # quantised: mostly 0 steps, plain MAD is 0
    x[1700:] += 6.0
    result = Ensemble(1).update(x)
    assert result.label[0, 1700:1705].any()
    assert not result.label[0, 1705:1800].any()  # said once, not on every later point


@settings(max_examples=10, deadline=None)
@given(value=st.floats(-1e9, 1e9), n=st.integers(1, 300))
def test_a_constant_series_raises_nothing(value: float, n: int) -> None:
    result = Ensemble(1).update(np.full(n, value))
    assert not result.label.any()
    assert (result.score == 0).all()


@settings(max_examples=8, deadline=None)
@given(
    amplitude=st.floats(0.1, 1e4),
    phase=st.floats(0.0, 6.3),
    level=st.floats(-1e3, 1e3),
)
def test_a_pure_seasonal_series_raises_nothing_once_a_cycle_is_known(
    amplitude: float, phase: float, level: float
) -> None:
    t = np.arange(DAY * 12)
    x = level + amplitude * np.sin(2 * np.pi * t / DAY + phase)
    result = Ensemble(1, EnsembleParams(season=DAY)).update(x)
    assert not result.label[0, 2 * DAY :].any()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    holes=st.lists(st.integers(0, 399), max_size=60),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_nan_and_inf_never_break_a_cycle(seed: int, holes: list[int], bad: float) -> None:
    x = noise(seed, 400) + 10
    x[holes] = bad
    result = Ensemble(1, EnsembleParams(season=DAY)).update(x)
    assert np.isfinite(result.score).all() and np.isfinite(result.evidence).all()
    assert ((result.score >= 0) & (result.score <= 1)).all()
    assert (result.score[0, holes] == 0).all()


def test_non_numeric_values_are_gaps() -> None:
    values = ["1", "2", "oops", None, "3", 4.0]
    result = Ensemble(1).update([values])
    assert result.score.shape == (1, 6)
    assert result.score[0, 2] == 0 and result.score[0, 3] == 0


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(1, 599),
    sizes=st.lists(st.integers(1, 200), min_size=1, max_size=6),
)
def test_causal_appending_never_changes_earlier_scores(
    seed: int, cut: int, sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(2, (3, 600)).cumsum(axis=1)
    x[rng.random(x.shape) < 0.01] = np.nan
    params = EnsembleParams(season=DAY)
    whole = Ensemble(3, params).update(x)
    prefix = Ensemble(3, params).update(x[:, :cut])
    np.testing.assert_array_equal(prefix.score, whole.score[:, :cut])
    # The same points fed in arbitrary slices (a watch cycle at a time) score the same.
    stream = Ensemble(3, params)
    parts, start = [], 0
    while start < x.shape[1]:
        step = sizes[len(parts) % len(sizes)]
        parts.append(stream.update(x[:, start : start + step]).score)
        start += step
    np.testing.assert_allclose(np.hstack(parts), whole.score, atol=1e-9)


def test_series_are_independent() -> None:
    a, b = noise(1, 800), noise(2, 800) * 100
    together = Ensemble(2).update(np.vstack([a, b])).score
    np.testing.assert_array_equal(together[0], Ensemble(1).update(a).score[0])
    np.testing.assert_array_equal(together[1], Ensemble(1).update(b).score[0])


def test_config_picks_the_first_matching_pattern_and_defaults_need_nothing() -> None:
    from lazarus.config import Detectors
    from lazarus.detect.ensemble import params_for

    detectors = Detectors.model_validate(
        {"anomaly": [{"series": "cpu_*", "season": "7d", "threshold": 0.2}, {"series": "*"}]}
    )
    cpu = params_for("cpu_busy", detectors.anomaly, interval=60.0)
    assert cpu.season == 7 * 1440 and cpu.threshold == 0.2
    other = params_for("latency", detectors.anomaly, interval=300.0)
    assert other.season == 288 and other.threshold == EnsembleParams().threshold
    assert params_for("x", [], interval=0.0) == EnsembleParams()


def test_state_survives_a_pickle_between_watch_runs() -> None:
    import pickle

    x = np.random.default_rng(4).standard_t(3, (4, 700)).cumsum(axis=1)
    whole = Ensemble(4, EnsembleParams(season=DAY)).update(x).score
    first = Ensemble(4, EnsembleParams(season=DAY))
    head = first.update(x[:, :450]).score
    resumed = pickle.loads(pickle.dumps(first))  # what a store keeps between runs
    np.testing.assert_allclose(np.hstack([head, resumed.update(x[:, 450:]).score]), whole)


def test_gaps_before_a_series_first_value_set_no_record_level() -> None:
    """A gap's stand-in (0 before any value) must not become the high or low to beat."""
    late = np.concatenate([np.full(50, np.nan), np.full(300, -5.0), [-4.0], np.full(49, -5.0)])
    x = np.vstack([noise(5, 400), late])
    ensemble = Ensemble(2)
    evidence = ensemble.update(x).evidence
    assert ensemble.high[1] == -4.0 and ensemble.low[1] == -5.0
    assert evidence[1, 350] == evidence[1].max() > 0.5


def test_the_second_thread_changes_no_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large block runs the seasonal view beside the level views: bit for bit the same."""
    from lazarus.detect import ensemble

    x = np.random.default_rng(6).standard_t(3, (300, 900)).cumsum(axis=1)
    x[np.random.default_rng(7).random(x.shape) < 0.01] = np.nan
    assert x.size >= ensemble.PARALLEL
    threaded = Ensemble(300, EnsembleParams(season=DAY)).update(x)
    monkeypatch.setattr(ensemble, "PARALLEL", x.size + 1)
    inline = Ensemble(300, EnsembleParams(season=DAY)).update(x)
    np.testing.assert_array_equal(threaded.score, inline.score)
    np.testing.assert_array_equal(threaded.evidence, inline.evidence)


def test_a_lasting_shift_after_a_spike_is_still_news() -> None:
    """The point channel stays quiet after a large spike (say it once over ~2,048 points); the
    shift channel, said once on its own, still reports a lasting shift 300 points later."""
    x = noise(0, 2400)
    x[1500] += 40.0
    x[1800:2000] += 4.0
    scores = Ensemble(1).update(x)
    with_shift = scores.label[0]
    without = Ensemble(1, EnsembleParams(shift_weight=0.0)).update(x).label[0]
    assert with_shift[1500] and without[1500]
    assert with_shift[1800:1830].any()
    assert not without[1800:1830].any()
    assert not with_shift[1830:2400].any()  # the shift is said once, its end is no news
    # Which channel spoke is kept, for the explanation.
    assert scores.lasting[0, 1800:1830][with_shift[1800:1830]].all()
    assert not scores.lasting[0, 1500]


def test_a_record_is_worth_no_more_than_the_rarest_faded_rank() -> None:
    """After ``span`` points a record's surprise stops growing with the series' length, as the
    ranks (faded over ``span``) do: a long series' records do not outweigh its ranks."""
    for span, seen, worth in ((100, 1000, 0.5), (10_000, 1000, np.log10(1001) / 4)):
        ensemble = Ensemble(1, EnsembleParams(span=span))
        ensemble.update(noise(0, seen))
        top1, top2 = np.zeros((1, 1)), np.zeros((1, 1))
        ones = np.ones((1, 1), dtype=bool)
        ensemble._records(np.array([[1e3]]), ones, ensemble.count, None, top1, top2)
        assert np.isclose(top1[0, 0], worth)


def test_a_slow_climb_after_a_spike_is_news_on_the_drift_channel() -> None:
    """A climb over 600 points after a large spike: no point and no 20 points beat the spike's
    surprise, so the point and shift channels stay quiet; the 200-point mean is news, once."""
    x = noise(5, 2800)
    x[1500] += 40.0
    x[1800:2400] += np.linspace(0.0, 12.0, 600)
    scores = Ensemble(1).update(x)
    without = Ensemble(1, EnsembleParams(drift=20)).update(x)  # two 20-point channels
    found = np.flatnonzero(scores.label[0, 1501:]) + 1501
    assert not without.label[0, 1501:].any()
    assert len(found) == 1 and 1800 <= found[0] < 2400
    assert scores.lasting_over(0, int(found[0])) == 200


def test_an_alarm_the_shift_channel_raised_says_it_was_a_lasting_shift() -> None:
    from datetime import datetime, timedelta

    from lazarus.detect.csvfile import explain_labels

    x = noise(0, 2400)
    x[1500] += 40.0
    x[1800:2000] += 4.0
    # 7-hour steps: fewer than 4 points a day, so no seasonal view, as in the test above
    stamps = [datetime(2026, 1, 1) + timedelta(hours=7 * i) for i in range(len(x))]
    labels = explain_labels(x, stamps)
    shift = [label for label in labels if 1800 <= label.row < 1830]
    spike = [label for label in labels if label.row == 1500]
    assert shift and "a lasting shift over the last 20 points" in shift[0].text()
    assert spike and "lasting" not in spike[0].text()


def test_a_state_pickled_before_the_lasting_channels_resumes() -> None:
    """An ensemble stored by the release before the shift channel (and the burst rule) loads
    and keeps scoring; one stored with the shift channel only keeps it and starts the drift
    channel."""
    import pickle

    x = np.random.default_rng(8).normal(0.0, 1.0, (3, 900))
    current = Ensemble(3, EnsembleParams(season=DAY))
    current.update(x[:, :500])
    shift = current.channels[0]
    state = {k: v for k, v in current.__dict__.items() if k not in ("channels", "burst")}
    kept_shift = state | {
        "burst": current.burst,
        "shift_moving": shift.moving,
        "shift_rank": shift.rank,
        "shift_suppressor": shift.suppressor,
    }
    for previous in (state, kept_shift):
        resumed = pickle.loads(pickle.dumps(_stored(previous)))
        scores = resumed.update(x[:, 500:])
        assert scores.score.shape == (3, 400) and np.isfinite(scores.score).all()
        assert [c.width for c in resumed.channels] == [20, 200]
    resumed = pickle.loads(pickle.dumps(_stored(kept_shift)))
    np.testing.assert_array_equal(resumed.channels[0].rank.above, shift.rank.above)
    assert resumed.channels[0].rank.above.any() and not resumed.channels[1].rank.above.any()


def _stored(state: dict) -> Ensemble:
    """An ensemble as an older release pickled it: only the attributes in ``state``."""
    ensemble = Ensemble.__new__(Ensemble)
    ensemble.__dict__.update(state)
    return ensemble


def test_a_rank_history_kept_at_16_bins_a_decade_carries_over() -> None:
    """A rank history stored at the old resolution is re-binned, never making a value rarer
    than the old history said, nor commoner than its old bin."""
    from lazarus.detect.calibrate import BINS, TailRank, bin_of

    values = np.random.default_rng(9).lognormal(0.0, 1.5, 5000)
    old_bins = 82  # 16 bins a decade from 0.01 to 1000, and one bin each side

    def old_bin(v: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(np.log10(v) * 16 + 33), 0, old_bins - 1).astype(int)

    counts = np.bincount(old_bin(values), minlength=old_bins)[::-1]
    rank = TailRank.__new__(TailRank)
    state = TailRank(1).__dict__ | {"above": np.cumsum(counts)[:, None].astype(np.float32)}
    rank.__setstate__(state | {"logs": np.zeros((old_bins, 1), np.float32)})
    assert rank.above.shape == (BINS, 1) and not hasattr(rank, "logs")
    for probe in (0.05, 0.9, 3.0, 17.0, 140.0):
        ge = rank.above[BINS - 1 - bin_of(np.array([probe]))[0], 0]
        same_old_bin_and_above = (old_bin(values) >= old_bin(np.array([probe]))).sum()
        assert (values >= probe).sum() <= ge <= same_old_bin_and_above
