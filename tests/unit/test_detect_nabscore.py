"""bench/nab.py's NAB v1.1 scorer: the null detector scores 0, a perfect one 100, and the
scaled sigmoid, probation and one-threshold sweep behave as NAB describes."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location(
    "nab_bench", Path(__file__).resolve().parents[2] / "bench" / "nab.py"
)
nab = importlib.util.module_from_spec(spec)
sys.modules["nab_bench"] = nab  # dataclasses look their module up
spec.loader.exec_module(nab)

STANDARD = nab.PROFILES["standard"]


def data_file(rows: int, windows: list[tuple[int, int]], name: str = "f") -> nab.DataFile:
    start = datetime(2024, 1, 1)
    stamps = [start + timedelta(minutes=5 * i) for i in range(rows)]
    return nab.DataFile(name, stamps, np.zeros(rows), windows)


def test_scaled_sigmoid_matches_nab_figures() -> None:
    got = nab.scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0]))
    np.testing.assert_allclose(got, [0.98661, 0.84828, 0.0, -0.98661, -1.0], atol=1e-5)


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert nab.probation_length(1000) == 150
    assert nab.probation_length(10_000) == 750


def test_null_scores_0_and_perfect_100() -> None:
    files = [data_file(2000, [(900, 1000), (1500, 1600)], "a"), data_file(1000, [], "b")]
    for name in nab.PROFILES:
        null = nab.normalised(files, nab.null_scores(files))[name][0]
        perfect = nab.normalised(files, nab.perfect_scores(files))[name][0]
        assert null == pytest.approx(0.0) and perfect == pytest.approx(100.0)


def test_late_detection_and_false_positives_cost_as_nab_says() -> None:
    files = [data_file(2000, [(1000, 1099)])]
    scores = np.zeros(2000)
    scores[1049] = 1.0  # halfway into the window: 0.84828 / 0.98661 of a true positive
    scores[400] = 1.0  # a false positive far from any window: -0.11
    scores[50] = 1.0  # inside the probationary period: not scored
    raw, threshold = nab.best_score(files, [scores], STANDARD)
    tp = nab.scaled_sigmoid(-0.5 - 1 / 100) / nab.scaled_sigmoid(-1.0)
    assert threshold == 1.0
    assert raw == pytest.approx(tp - 0.11)


def test_one_threshold_is_swept_over_all_files() -> None:
    files = [data_file(2000, [(1000, 1099)], "a"), data_file(2000, [(1000, 1099)], "b")]
    a, b = np.zeros(2000), np.zeros(2000)
    a[1000] = 0.9  # a hit at 0.9
    b[1000] = 0.5  # a hit at 0.5 ...
    a[300:310] = 0.6  # ... that costs 10 false positives at 0.6 in the other file
    raw, threshold = nab.best_score(files, [a, b], STANDARD)
    assert threshold == 0.5
    assert raw == pytest.approx(2 * 1.0 - 10 * 0.11)
