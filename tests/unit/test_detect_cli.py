"""`lazarus detect`: NAB-format CSV in, the same rows plus anomaly_score out."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus.cli import main
from lazarus.detect.csvfile import (
    climbing,
    cool_down,
    lagged_excess,
    period_points,
    score_values,
)


def write_series(path: Path, values: list[str], step: timedelta = timedelta(minutes=5)) -> None:
    start = datetime(2024, 1, 1)
    lines = ["timestamp,value"]
    lines += [f"{(start + i * step).isoformat(sep=' ')},{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")


def test_detect_writes_every_row_plus_a_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = [f"{v:.3f}" for v in 20 + rng.normal(0, 1, 1200)]
    values[1000:] = [f"{float(v) + 15:.3f}" for v in values[1000:]]
    values[10] = "NaN"
    values[11] = "not-a-number"
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src, values)
    assert main(["detect", "--input", str(src), "--output", str(dst)]) == 0
    rows = list(csv.reader(dst.open()))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    original = list(csv.reader(src.open()))
    assert [r[:2] for r in rows] == original
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[10] == 0 and scores[11] == 0
    assert scores[1000:1005].max() > 0.05  # the shift opens an episode
    assert scores[1000:1005].max() == scores[200:].max()


def test_detect_refuses_a_file_without_the_nab_header(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("time,val\n1,2\n")
    assert main(["detect", "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 2
    assert "timestamp,value" in capsys.readouterr().err


def test_detect_reports_a_missing_file(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.csv"
    assert main(["detect", "--input", str(missing), "--output", str(tmp_path / "o.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_period_is_one_day_of_points_from_the_spacing() -> None:
    start = datetime(2024, 1, 1)
    stamps = [start + i * timedelta(minutes=5) for i in range(50)]
    assert period_points(stamps) == 288
    assert period_points([start + i * timedelta(hours=12) for i in range(50)]) == 0
    assert period_points([None, start, start]) == 0  # no usable spacing


def test_cool_down_quiets_a_stretch_that_grows_with_the_points_seen() -> None:
    scores = np.zeros(2000)
    scores[[100, 101, 500, 505, 515, 1000]] = [0.3, 0.9, 0.2, 0.6, 0.4, 0.1]
    out = cool_down(scores, threshold=0.05, fraction=0.02)
    # 100 mutes 2 points (101 too, though larger); 500 mutes 10 (505), 515 is past them.
    assert out[[100, 101, 500, 505, 515, 1000]].tolist() == [0.3, 0.0, 0.2, 0.0, 0.4, 0.1]
    assert (out <= scores).all() and scores.tolist() == cool_down(scores, 1.0).tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=300), st.integers(1, 300))
def test_cool_down_is_causal(values: list[float], cut: int) -> None:
    scores = np.array(values)
    whole = cool_down(scores, threshold=0.5, fraction=0.05)
    assert whole[:cut].tolist() == cool_down(scores[:cut], threshold=0.5, fraction=0.05).tolist()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=200),
    st.integers(1, 40),
    st.integers(0, 39),
)
def test_lagged_excess_is_the_rise_over_the_bar_of_lag_points_ago(
    values: list[float], window: int, shorter: int
) -> None:
    lag = max(1, window - shorter)
    e = np.array(values)
    expected = [
        max(0.0, e[t] - max(e[max(0, t - window) : max(0, t - lag + 1)], default=0.0))
        for t in range(len(e))
    ]
    assert lagged_excess(e, window, lag).tolist() == expected


def test_a_climb_counts_whole_with_a_lag() -> None:
    evidence = np.concatenate([np.full(100, 0.1), np.linspace(0.1, 0.5, 11)[1:], np.full(50, 0.5)])
    assert lagged_excess(evidence, 64, 1)[1:].max() < 0.05  # step by step: never a label
    assert abs(lagged_excess(evidence, 64, 20).max() - 0.4) < 1e-9


def test_a_climb_speaks_only_when_it_beats_what_it_already_said() -> None:
    scores = np.zeros(200)
    scores[[10, 11, 12, 13, 15, 40, 41, 100]] = [0.05, 0.04, 0.05, 0.07, 0.06, 0.03, 0.02, 0.01]
    out = climbing(scores, gap=20)
    # 10..15 is one climb: 11 and 12 add nothing to 10's 0.05, 15 nothing to 13's 0.07.
    # 40 is 25 points after 15: a new climb, heard however low; so is 100.
    assert np.flatnonzero(out).tolist() == [10, 13, 40, 100]
    assert out[[10, 13, 40, 100]].tolist() == [0.05, 0.07, 0.03, 0.01]


def test_the_csv_path_is_quiet_on_constant_and_seasonal_data_and_causal() -> None:
    day, step = 96, timedelta(minutes=15)
    stamps = [datetime(2024, 1, 1) + i * step for i in range(day * 12)]
    t = np.arange(day * 12)
    assert (score_values(np.full(len(t), 3.5), stamps) == 0).all()
    for phase in (0.0, 1.0, 4.0):
        seasonal = score_values(10 + 5 * np.sin(2 * np.pi * t / day + phase), stamps)
        assert (seasonal[2 * day :] < 0.05).all()
    x = 20 + np.random.default_rng(3).normal(0, 1, len(t))
    x[900:] += 8
    whole = score_values(x, stamps)
    assert whole[900:905].max() >= 0.05  # the shift is labelled
    for cut in (250, 700, 903):
        assert score_values(x[:cut], stamps[:cut]).tolist() == whole[:cut].tolist()
