"""One detector: `lazarus detect` on a CSV labels exactly the points the watch labels."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from lazarus.config import Config
from lazarus.detect.csvfile import score_values
from lazarus.detect.cycle import detect_series
from lazarus.detect.ensemble import EnsembleParams
from lazarus.model import Sample
from lazarus.store import Store

STEP = timedelta(minutes=30)  # a day is 48 points: the seasonal view runs in both


def series(n: int = 900) -> np.ndarray:
    t = np.arange(n)
    x = 50 + 10 * np.sin(2 * np.pi * t / 48) + np.random.default_rng(5).normal(0, 1, n)
    x[400] += 30  # a spike
    x[600:] += 12  # a level shift
    x[700:706] = x[652:658]  # a repeated shape out of its hour: only the seasonal view minds
    return x


def test_the_watch_replaying_a_series_labels_what_lazarus_detect_labels(tmp_path: Path) -> None:
    values = series()
    start = datetime(2024, 1, 1)
    stamps = [start + i * STEP for i in range(len(values))]
    config = Config.model_validate(
        {
            "inventory": {"ssh": {"key": "k"}, "hosts": []},
            "watch": {"interval": "30m"},
            "state": {"path": str(tmp_path / "state.db")},
        }
    )
    watch_labels = []
    for at, value in zip(stamps, values, strict=True):
        store = Store(tmp_path / "state.db")  # every cycle a new watch run
        try:
            found = detect_series(store, config, [Sample("cpu", (), float(value), at.timestamp())])
        finally:
            store.close()
        watch_labels += [a.at for a in found if a.symptom == "cpu_anomaly"]
    scores = score_values(values, stamps)
    threshold = EnsembleParams().threshold  # the threshold both use
    csv_labels = [s.timestamp() for s, v in zip(stamps, scores, strict=True) if v >= threshold]
    assert csv_labels == watch_labels
    assert start.timestamp() + 400 * STEP.total_seconds() in watch_labels  # the spike
    assert len(watch_labels) >= 2
