"""Backtest: replaying history gives what the watch cycles would have said, once per episode."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.commands.backtest import parse_time
from lazarus.config import Config
from lazarus.detect.cycle import detect_series
from lazarus.detect.replay import replay
from lazarus.model import Sample
from lazarus.store import Store


def make_config() -> Config:
    return Config.model_validate(
        {
            "inventory": {"ssh": {"key": "k"}, "hosts": []},
            "detectors": {"anomaly": [{"series": "*", "warmup": 100, "season": None}]},
        }
    )


def history() -> list[Sample]:
    samples = []
    for i in range(250):
        at = 1000.0 + 15 * i
        samples.append(Sample("lat", (("host", "a"),), 10 + (i % 7) / 10, at))
        if not 200 <= i < 210:  # b is silent for 10 steps
            samples.append(Sample("lat", (("host", "b"),), 900.0 if i == 150 else 10.0, at))
    return samples


def test_replay_reports_episode_starts_of_what_the_cycles_said(tmp_path: Path) -> None:
    config = make_config()
    samples = history()
    found = replay(config, samples)
    assert [(a.host, a.symptom, a.at) for a in found] == [
        ("b", "lat_anomaly", 1000.0 + 15 * 150),
        ("b", "lat_absent", 1000.0 + 15 * 202),  # 3rd silent step; ongoing until it is back
    ]
    # The same as cycle after cycle on a store, minus the repeats of an ongoing absence.
    store = Store(tmp_path / "s.db")
    every = []
    for i in range(250):
        at = 1000.0 + 15 * i
        every += detect_series(store, config, [s for s in samples if s.at == at])
    store.close()
    assert [a.symptom for a in every] == ["lat_anomaly"] + ["lat_absent"] * 8


def test_parse_time() -> None:
    assert parse_time("now", now=5000.0) == 5000.0
    assert parse_time("-1h", now=5000.0) == 1400.0
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("2023-11-14T22:13:20") == 1700000000.0  # UTC unless it says
    assert parse_time("2023-11-14T23:13:20+01:00") == 1700000000.0
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday")
