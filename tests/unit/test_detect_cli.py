"""`lazarus detect`: NAB-format CSV in, the same rows plus anomaly_score out."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from lazarus.cli import main
from lazarus.detect.csvfile import period_points


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
