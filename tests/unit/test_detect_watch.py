"""Statistical detection in the watch: several cycles through ``detect_series`` on a real store."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lazarus.config import Config
from lazarus.detect import cycle, state
from lazarus.detect.cycle import detect_series, known_series, series_key, target_of
from lazarus.detect.ensemble import Ensemble, params_for
from lazarus.detect.esd import SeasonalEsd
from lazarus.detect.extras import PAGE_ALPHA
from lazarus.model import Anomaly, Sample
from lazarus.store import Store

WARMUP = 100


def make_config(tmp_path: Path, **anomaly: Any) -> Config:
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": [{"name": "web-1", "address": "10.0.0.11"}],
            },
            "detectors": {
                "anomaly": [{"series": "*", "warmup": WARMUP, "season": None, **anomaly}]
            },
            "state": {"path": str(tmp_path / "state.db")},
        }
    )


def labels(host: str) -> tuple[tuple[str, str], ...]:
    return (("host", host), ("service", "api"))


def noise(n: int, seed: int = 1) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


class Watch:
    """Cycles as separate watch runs would make them: the store is opened anew every cycle."""

    def __init__(self, config: Config):
        self.config, self.t = config, 1000.0

    def cycle(self, values: dict[str, Any], series: str = "latency") -> list[Anomaly]:
        self.t += 15.0
        samples = [Sample(series, labels(h), v, self.t) for h, v in values.items()]
        return self.run(samples)

    def run(self, samples: list[Sample]) -> list[Anomaly]:
        store = Store(self.config.path(self.config.state.path))
        try:
            return detect_series(store, self.config, samples)
        finally:
            store.close()


def test_a_spike_after_warm_up_is_one_anomaly_named_after_the_series(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    values = noise(WARMUP + 40)
    values[WARMUP + 20] = 160.0
    found = {i: watch.cycle({"web-1": v}) for i, v in enumerate(values)}
    hits = {i: a for i, a in found.items() if a}
    assert list(hits) == [WARMUP + 20]  # nothing in warm-up, once for the spike, not after
    (anomaly,) = hits[WARMUP + 20]
    assert (anomaly.host, anomaly.service, anomaly.symptom, anomaly.severity) == (
        "web-1",
        "api",
        "latency_anomaly",
        "warning",
    )
    assert anomaly.labels["series"] == 'latency{host="web-1",service="api"}'
    # It explains itself: the value, the band the view expected, the view.
    assert anomaly.summary.startswith('latency{host="web-1",service="api"} 160, expected ')
    low, high = (
        float(v) for v in anomaly.summary.split("expected ")[1].split(" (")[0].split(" to ")
    )
    assert 95 < low < 100 < high < 105
    assert "(level, its recent mean)" in anomaly.summary or "(a new record" in anomaly.summary


def test_state_in_the_store_continues_exactly_as_one_uninterrupted_ensemble(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    values = noise(300, seed=7)
    values[[120, 200, 260]] += [15.0, -12.0, 25.0]
    watch = Watch(config)
    labelled = [bool(watch.cycle({"web-1": v})) for v in values]
    params = params_for("latency", config.detectors.anomaly, config.watch.interval)
    direct = Ensemble(1, params).update(values).label[0]
    assert labelled == direct.tolist()
    assert sum(labelled) >= 2  # the check means something: it did find the shifts


def test_series_that_start_together_share_one_vectorised_ensemble(tmp_path: Path) -> None:
    """Three hosts from the first cycle are one cohort; a fourth that joins later its own."""
    config = make_config(tmp_path)
    rng = np.random.default_rng(11)
    block = 50.0 + rng.normal(0.0, 2.0, (4, 260))
    block[0, 180] += 40.0
    block[1, 220] -= 30.0
    hosts = ["a", "b", "c", "late"]
    watch = Watch(config)
    found: set[tuple[str, int]] = set()
    for t in range(block.shape[1]):
        reporting = hosts if t >= 60 else hosts[:3]
        got = watch.cycle({h: block[i, t] for i, h in enumerate(reporting)})
        found |= {(a.host, t) for a in got}
    params = params_for("latency", config.detectors.anomaly, config.watch.interval)
    together = Ensemble(3, params).update(block[:3]).label
    alone = Ensemble(1, params).update(block[3, 60:]).label[0]
    expected = {(hosts[i], int(t)) for i, t in zip(*together.nonzero(), strict=True)}
    expected |= {("late", int(t) + 60) for t in alone.nonzero()[0]}
    assert found == expected
    assert {("a", 180), ("b", 220)} <= found  # the check means something
    store = Store(config.path(config.state.path))
    cohorts = {r.cohort for r in known_series(store).values()}
    store.close()
    assert len(cohorts) == 2


def test_a_series_that_stops_is_absent_until_it_reports_again(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path, absent_after=3))
    for _ in range(5):
        assert watch.cycle({"web-1": 1.0, "web-2": 1.0}) == []
    silent = [watch.cycle({"web-1": 1.0}) for _ in range(4)]
    assert [len(a) for a in silent] == [0, 0, 1, 1]  # from the 3rd silent cycle on
    absent = silent[2][0]
    assert (absent.host, absent.symptom) == ("web-2", "latency_absent")
    assert "3 cycles" in absent.summary
    assert watch.cycle({"web-1": 1.0, "web-2": 1.0}) == []  # reported again: not absent


def test_a_query_returning_nothing_counts_no_absence(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path, absent_after=1))
    watch.cycle({"web-1": 1.0})
    for _ in range(3):  # the source failed, or the query filters: no series of the name
        assert watch.cycle({"web-1": 5.0}, series="other") == []
    assert [a.symptom for a in watch.cycle({"web-2": 1.0})] == ["latency_absent"]


def test_gaps_and_garbage_never_fail_a_cycle(tmp_path: Path) -> None:
    """NaN, inf and non-numbers are gaps (silent cycles); duplicate and old timestamps drop."""
    config = make_config(tmp_path, absent_after=2)
    watch = Watch(config)
    for v in noise(WARMUP + 5):
        watch.cycle({"web-1": v, "web-2": v})
    assert watch.cycle({"web-1": float("nan"), "web-2": 100.0}) == []
    found = watch.cycle({"web-1": "not a number", "web-2": float("inf")})  # type: ignore[dict-item]
    assert [(a.host, a.symptom) for a in found] == [("web-1", "latency_absent")]
    t = watch.t
    key = series_key("latency", labels("web-2"))
    same_time = [Sample("latency", labels("web-2"), v, t + 1) for v in (100.0, 500.0)]
    older = [Sample("latency", labels("web-2"), 9e9, t - 100)]
    found = watch.run([*older, *same_time, Sample("latency", labels("web-1"), 100.0, t + 1)])
    assert [a.symptom for a in found] == ["latency_anomaly"]  # the later duplicate (500) won
    assert "} 500, expected " in found[0].summary
    store = Store(config.path(config.state.path))
    rows = known_series(store)
    store.close()
    assert rows[key].last_at == t + 1 and rows[key].silent == 0


def test_an_unreadable_or_foreign_state_starts_afresh(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    watch = Watch(config)
    for v in noise(WARMUP + 5):
        watch.cycle({"web-1": v})
    store = Store(config.path(config.state.path))
    evil = state.dumps(Path("x"))  # any class outside numpy and lazarus.detect
    with pytest.raises(pickle.UnpicklingError):
        state.loads(state.dumps(print))
    with store.transaction() as db:
        db.execute("UPDATE detector_cohorts SET state=?", (evil,))
    store.close()
    # Afresh: in warm-up again, so even a huge value is not an anomaly.
    assert watch.cycle({"web-1": 1e6}) == []
    store = Store(config.path(config.state.path))
    with store.transaction() as db:
        db.execute("UPDATE detector_cohorts SET state=?", (b"garbage",))
    store.close()
    assert watch.cycle({"web-1": 1e7}) == []


def test_changed_parameters_start_afresh(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    for v in noise(WARMUP + 5):
        watch.cycle({"web-1": v})
    watch.config = make_config(tmp_path, warmup=WARMUP + 1)
    assert watch.cycle({"web-1": 1e6}) == []
    watch.config = make_config(tmp_path)
    assert watch.cycle({"web-1": 1e6}) == []  # changed back: afresh again


def test_long_silent_series_are_forgotten(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(cycle, "FORGET", 4)
    config = make_config(tmp_path, absent_after=1)
    watch = Watch(config)
    watch.cycle({"web-1": 1.0, "web-2": 1.0})
    assert [len(watch.cycle({"web-1": 1.0})) for _ in range(5)] == [1, 1, 1, 0, 0]
    store = Store(config.path(config.state.path))
    keys = set(known_series(store))
    store.close()
    assert keys == {series_key("latency", labels("web-1"))}


def test_target_from_labels() -> None:
    addresses = {"10.0.0.11": "web-1"}
    assert target_of({"host": "db-1", "service": "pg"}, addresses) == ("db-1", "pg")
    assert target_of({"instance": "10.0.0.11:8080", "job": "x"}, addresses) == ("web-1", "")
    assert target_of({"instance": "[::1]:9100"}, addresses) == ("::1", "")
    assert target_of({"instance": "node-a"}, addresses) == ("node-a", "")
    assert series_key("up", [("job", "a"), ("instance", 'x"y')]) == 'up{instance="x\\"y",job="a"}'


def cycles_of(
    watch: Watch, values: np.ndarray, per_cycle: int = 50, first: float = 0.0
) -> list[Anomaly]:
    """Feed ``values`` ``per_cycle`` points a cycle (as a Prometheus range query brings them),
    point i at time ``first + i``; returns every anomaly found."""
    found: list[Anomaly] = []
    for start in range(0, len(values), per_cycle):
        part = range(start, min(start + per_cycle, len(values)))
        found += watch.run([Sample("latency", labels("web-1"), values[i], first + i) for i in part])
    return found


def test_an_extra_change_point_detector_finds_a_small_lasting_shift_once(tmp_path: Path) -> None:
    values = noise(1500, seed=5)
    values[600:] += 1.5  # 1.5 sigma: no point stands out, the sum does
    values[[100, 650]] = np.nan  # gaps keep the detector's state: no new episode
    plain = cycles_of(Watch(make_config(tmp_path / "plain")), values)
    assert not [a for a in plain if a.symptom != "latency_anomaly"]
    found = cycles_of(Watch(make_config(tmp_path, also=["change_point"])), values)
    (change,) = [a for a in found if a.symptom == "latency_change_point"]
    assert 600 <= change.at < 640
    assert "lasting change in level or variance" in change.summary
    ensemble = [(a.symptom, a.at) for a in found if a.symptom == "latency_anomaly"]
    assert ensemble == [("latency_anomaly", a.at) for a in plain]  # the ensemble is unchanged


def test_an_extra_rate_of_change_detector_says_a_jump_once(tmp_path: Path) -> None:
    values = np.linspace(0.0, 500.0, 700) + noise(700, seed=6) * 0.05 - 100.0
    values[650:] += 30.0  # a ramp is no jump; the step onto the new level is
    found = cycles_of(Watch(make_config(tmp_path, also=["rate_of_change"])), values, 25)
    jumps = [a.at for a in found if a.symptom == "latency_rate_of_change"]
    assert jumps == [650.0]


def test_changing_the_extras_starts_a_new_cohort_and_nonsense_is_refused(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    cycles_of(watch, noise(60))
    store = Store(watch.config.path(watch.config.state.path))
    before = {r.cohort for r in known_series(store).values()}
    watch.config = make_config(tmp_path, also=["change_point"])
    cycles_of(watch, noise(60), first=60.0)
    after = {r.cohort for r in known_series(store).values()}
    store.close()
    assert len(before) == len(after) == 1 and before != after
    with pytest.raises(ValueError, match=r"detectors\.anomaly\.0\.also\.0"):
        make_config(tmp_path, also=["fourier"])


def test_extra_median_mad_and_esd_detectors_say_a_spike_once_each(tmp_path: Path) -> None:
    values = noise(700, seed=8)
    values[500] += 12.0
    found = cycles_of(Watch(make_config(tmp_path, also=["mad", "esd"])), values)
    said = sorted((a.symptom, a.at) for a in found if a.symptom != "latency_anomaly")
    assert said == [("latency_esd", 500.0), ("latency_mad", 500.0)]
    (esd,) = [a for a in found if a.symptom == "latency_esd"]
    assert "generalised ESD" in esd.summary


def test_the_rings_live_in_the_store_and_score_as_one_uninterrupted_run(tmp_path: Path) -> None:
    config = make_config(tmp_path, season="105s", also=["esd"])  # 7 points at the 15 s interval
    t = np.arange(400)
    values = 100.0 + 10.0 * np.sin(2 * np.pi * t / 7) + noise(400, seed=9) * 0.3 - 100.0
    values[[180, 330]] += [25.0, -25.0]  # breaks of the cycle
    watch = Watch(config)
    found = cycles_of(watch, values[:150], per_cycle=1)
    found += cycles_of(watch, values[150:], per_cycle=9, first=150.0)
    params = params_for("latency", config.detectors.anomaly, config.watch.interval)
    assert params.season == 7
    direct = Ensemble(1, params)
    labelled = direct.update(values).label[0]
    expected = [i for i in range(150) if labelled[i]]
    for start in range(150, 400, 9):  # a cycle reports the first label among its points
        expected += [start + int(i) for i in labelled[start : start + 9].nonzero()[0][:1]]
    assert sorted(int(a.at) for a in found if a.symptom == "latency_anomaly") == expected
    assert 180 in expected  # the check means something
    esd = SeasonalEsd(1, 7, alpha=PAGE_ALPHA)
    esd.update(values)
    store = Store(config.path(config.state.path))
    with store.transaction() as db:
        rows = db.execute("SELECT ring, slot, row FROM detector_ring_slots").fetchall()
        (blob,) = db.execute("SELECT state FROM detector_cohorts").fetchone()
    store.close()
    slots = {(ring, slot): np.frombuffer(row)[0] for ring, slot, row in rows}
    assert {k[1]: v for k, v in slots.items() if k[0] == "seasonal"} == {
        i % 7: values[i] for i in t[-7:]
    }
    assert {k[1]: v for k, v in slots.items() if k[0] == "esd"} == {
        i: esd.ring.slots[i, 0] for i in range(esd.ring_span)
    }
    cohort = state.loads(blob)
    assert cohort.ensemble.seasonal.ring is None and cohort.extras["esd"].ring is None
    for name, learnt in vars(direct.seasonal.ewm).items():  # what the residuals taught it
        np.testing.assert_array_equal(getattr(cohort.ensemble.seasonal.ewm, name), learnt)
    np.testing.assert_array_equal(cohort.extras["esd"].residuals, esd.residuals)


def test_a_damaged_ring_slot_reads_as_zero_and_is_written_anew(tmp_path: Path) -> None:
    config = make_config(tmp_path, season="105s")
    watch = Watch(config)
    cycles_of(watch, noise(20), per_cycle=5)
    store = Store(config.path(config.state.path))
    with store.transaction() as db:
        db.execute("UPDATE detector_ring_slots SET row=? WHERE slot=6", (b"bad",))
    store.close()
    assert cycles_of(watch, noise(1, seed=2), first=20.0) == []  # slot 6: the one position 20 reads
    store = Store(config.path(config.state.path))
    with store.transaction() as db:
        (row,) = db.execute("SELECT row FROM detector_ring_slots WHERE slot=6").fetchone()
    store.close()
    assert np.frombuffer(row).tolist() == [noise(1, seed=2)[0]]


def _as_released_before_the_ring_table(db: Any) -> None:
    """Rewrite the stored state as the release before the ring table wrote it: each ring an
    array inside the pickle (``history`` / ``detrended``, oldest row at ``start``), no slots."""
    (blob,) = db.execute("SELECT state FROM detector_cohorts").fetchone()
    cohort = state.loads(blob)
    slots: dict[str, dict[int, np.ndarray]] = {}
    for ring, slot, row in db.execute("SELECT ring, slot, row FROM detector_ring_slots"):
        slots.setdefault(ring, {})[slot] = np.frombuffer(row).reshape(1, -1)
    seasonal, esd = cohort.ensemble.seasonal, cohort.extras["esd"]
    for name, detector, rows in (("seasonal", seasonal, seasonal.seen), ("esd", esd, esd.rows)):
        array = np.concatenate([slots[name][s] for s in range(detector.ring_span)])
        setattr(detector, "history" if name == "seasonal" else "detrended", array)
        detector.start = rows % detector.ring_span
        del detector.ring
    del esd.rows
    db.execute("UPDATE detector_cohorts SET state=?", (state.dumps(cohort),))
    db.execute("DELETE FROM detector_ring_slots")


def test_a_cohort_stored_before_the_ring_table_carries_its_past_over(tmp_path: Path) -> None:
    """An upgrade judges the next period against the stored past, not against empty slots (a
    seasonal view comparing with zeros would page on every series)."""
    t = np.arange(300)
    values = 100.0 + 10.0 * np.sin(2 * np.pi * t / 7) + noise(300, seed=9) * 0.3
    values[230] += 25.0  # a break of the cycle
    found, cohorts = {}, {}
    for run, upgrade in (("straight", False), ("upgraded", True)):
        config = make_config(tmp_path / run, season="105s", also=["esd"])
        watch = Watch(config)
        found[run] = cycles_of(watch, values[:150], per_cycle=10)
        store = Store(config.path(config.state.path))
        if upgrade:
            with store.transaction() as db:
                _as_released_before_the_ring_table(db)
        store.close()
        found[run] += cycles_of(watch, values[150:], per_cycle=10, first=150.0)
        store = Store(config.path(config.state.path))
        with store.transaction() as db:
            (blob,) = db.execute("SELECT state FROM detector_cohorts").fetchone()
        store.close()
        cohorts[run] = state.loads(blob)
    said = {run: [(a.symptom, a.at) for a in got] for run, got in found.items()}
    assert said["upgraded"] == said["straight"]
    assert ("latency_anomaly", 230.0) in said["straight"]  # the check means something
    straight, upgraded = cohorts["straight"], cohorts["upgraded"]
    for name, learnt in vars(straight.ensemble.seasonal.ewm).items():  # what residuals taught it
        np.testing.assert_array_equal(getattr(upgraded.ensemble.seasonal.ewm, name), learnt)
    esd = upgraded.extras["esd"].residuals
    np.testing.assert_array_equal(esd, straight.extras["esd"].residuals)
