"""Every alarm explains itself: the view that fired and the band it expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lazarus.config import Config
from lazarus.detect.cycle import detect_series
from lazarus.detect.ensemble import Ensemble, EnsembleParams
from lazarus.detect.explain import Before
from lazarus.model import Sample
from lazarus.notify.message import render
from lazarus.store import Store

DAY = 48


def trained(days: int = 30) -> tuple[Ensemble, np.ndarray]:
    t = np.arange(DAY * days)
    x = 50 + 20 * np.sin(2 * np.pi * t / DAY) + np.random.default_rng(2).normal(0, 1, len(t))
    ensemble = Ensemble(1, EnsembleParams(season=DAY))
    ensemble.update(x)
    return ensemble, x


def test_a_value_out_of_its_hour_names_the_seasonal_view_and_the_usual_band() -> None:
    ensemble, x = trained()
    expected_now = float(x[-DAY])  # the same time a day ago (the next point's phase)
    # The level is usual (within the day's range) but 15 off the same time yesterday.
    value = expected_now - 15 if expected_now > 50 else expected_now + 15
    why = Before.of(ensemble).why(0, value, "1 day")
    assert why.view == "seasonal, same time 1 day ago"
    assert why.low < expected_now < why.high
    assert not why.low <= value <= why.high
    assert why.high - why.low < 15  # a day's noise (sd 1), not the day's 40-wide swing
    assert why.text(value).startswith(f"{value:.4g}, expected ")


def test_a_value_beyond_everything_is_a_record_and_usual_values_sit_in_their_band() -> None:
    ensemble, _ = trained()
    before = Before.of(ensemble)
    why = before.why(0, 500.0)
    assert why.view.startswith(("level", "a new record", "seasonal"))
    assert why.high < 500
    fresh = Before.of(Ensemble(1, EnsembleParams(season=DAY)))
    # A first point has nothing to compare with.
    assert fresh.why(0, 3.0).view == "no view had history before this update"


def test_the_watch_anomaly_incident_and_message_carry_the_explanation(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "inventory": {"ssh": {"key": "k"}, "hosts": []},
            "watch": {"interval": "30m"},
            "state": {"path": str(tmp_path / "state.db")},
        }
    )
    t = np.arange(DAY * 12)
    x = 50 + 20 * np.sin(2 * np.pi * t / DAY) + np.random.default_rng(2).normal(0, 1, len(t))
    store = Store(tmp_path / "state.db")
    try:
        samples = [
            Sample("latency_p99", (("host", "web-1"),), v, 1800.0 * i) for i, v in enumerate(x)
        ]
        detect_series(store, config, samples)  # twelve days of history in one first cycle
        at = 1800.0 * len(x)
        (anomaly,) = detect_series(
            store, config, [Sample("latency_p99", (("host", "web-1"),), 95.0, at)]
        )
        assert "latency_p99" in anomaly.summary and " 95, expected " in anomaly.summary
        band = anomaly.summary.split("expected ")[1].split(" (")[0]
        low, high = (float(v) for v in band.split(" to "))
        assert 20 < low < high < 80  # the day's values, not the spike
        incident, _ = store.open_incident(anomaly)
    finally:
        store.close()
    message = render(incident, "opened")
    assert anomaly.summary in message.body and message.summary == anomaly.summary
