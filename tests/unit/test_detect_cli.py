"""`lazarus detect`: NAB-format CSV in, the same rows plus anomaly_score out."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from lazarus.cli import main
from lazarus.detect.csvfile import period_points, score_values
from lazarus.detect.ensemble import EnsembleParams


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


def test_rows_out_of_order_or_repeated_score_zero_and_teach_nothing(tmp_path: Path) -> None:
    """As the watch drops a point not newer than the last, so does `lazarus detect`."""
    start, step = datetime(2024, 1, 1), timedelta(minutes=5)
    x = 20 + np.random.default_rng(4).normal(0, 1, 1500)
    x[1300] += 15
    stamps = [start + i * step for i in range(1500)]
    clean = score_values(x, stamps)
    # A late row (an hour back) and a duplicate row slipped in after row 300.
    messy_x = np.concatenate([x[:301], [1e6, 1e6], x[301:]])
    messy_t = [*stamps[:301], stamps[290], stamps[300], *stamps[301:]]
    messy = score_values(messy_x, messy_t)
    assert messy[[301, 302]].tolist() == [0.0, 0.0]
    assert np.delete(messy, [301, 302]).tolist() == clean.tolist()
    assert clean.max() > 0  # the check compares scores that are there


def test_a_single_point_an_empty_file_and_all_gaps_score_zero(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    for values in (["7"], [], ["NaN"] * 300, ["", "x", "inf"] * 100):
        write_series(src, values)
        assert main(["detect", "--input", str(src), "--output", str(dst)]) == 0
        scores = [float(r[2]) for r in list(csv.reader(dst.open()))[1:]]
        assert scores == [0.0] * len(values)


def test_gaps_in_time_are_points_apart_not_filled() -> None:
    """A stretch without rows (a scrape outage) is no anomaly by itself."""
    start, step = datetime(2024, 1, 1), timedelta(minutes=5)
    t = [start + i * step for i in range(400)] + [start + (i + 2000) * step for i in range(400)]
    x = 20 + np.random.default_rng(6).normal(0, 1, 800)
    assert score_values(x, t)[380:420].max() < 0.05


def test_an_unreadable_timestamp_names_its_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n")
    assert main(["detect", "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 2
    assert "in.csv:3" in capsys.readouterr().err


def test_detect_prints_each_row_the_watch_would_label_with_its_explanation(
    tmp_path: Path, capsys
) -> None:
    x = 20 + np.random.default_rng(3).normal(0, 1, 1500)
    x[1300] += 40
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src, [f"{v:.3f}" for v in x])
    assert main(["detect", "--input", str(src), "--output", str(dst)]) == 0
    out = capsys.readouterr().out
    scores = [float(r[2]) for r in list(csv.reader(dst.open()))[1:]]
    labelled = [i for i, s in enumerate(scores) if s >= EnsembleParams().threshold]
    assert 1300 in labelled
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(lines) == len(labelled)
    spike = next(line for line in lines if f"in.csv:{1300 + 2} " in line)
    assert f"{x[1300]:.4g}, expected " in spike and "score " in spike
    low, high = (float(v) for v in spike.split("expected ")[1].split(" (")[0].split(" to "))
    assert 15 < low < 20 < high < 25
