"""Every alarm explains itself: the view that fired and the band it expected."""

from __future__ import annotations

import numpy as np

from lazarus.detect.ensemble import Ensemble, EnsembleParams
from lazarus.detect.explain import Before

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
    assert fresh.why(0, 3.0).view == "no history yet"  # a first point has nothing to compare
