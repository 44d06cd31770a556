"""Peer comparison in the watch: cycles through ``detect_series`` on a real store, one host of a
service against the same series on its peers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lazarus.config import Config
from lazarus.detect.cycle import detect_series
from lazarus.detect.peer import peer_scores
from lazarus.model import Anomaly, Sample
from lazarus.store import Store

CALM = {"web-1": 0.39, "web-2": 0.4, "web-3": 0.41, "web-4": 0.4}
HOSTS = list(CALM)


def make_config(tmp_path: Path, *anomaly: dict[str, Any]) -> Config:
    entries = [*anomaly, {"series": "*"}]
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": [{"name": h, "address": f"10.0.0.{11 + i}"} for i, h in enumerate(HOSTS)],
            },
            "detectors": {"anomaly": [{"warmup": 1000, "season": None, **e} for e in entries]},
            "state": {"path": str(tmp_path / "state.db")},
        }
    )


class Watch:
    """Cycles as separate watch runs make them: the store is opened anew every cycle."""

    def __init__(self, config: Config, t: float = 1000.0):
        self.config, self.t = config, t

    def cycle(
        self, values: dict[str, float], series: str = "load1", service: str = "web"
    ) -> list[Anomaly]:
        return self.run(self.next_samples(values, series, service))

    def next_samples(
        self, values: dict[str, float], series: str = "load1", service: str = "web"
    ) -> list[Sample]:
        """One point per host, 15 s after the last."""
        self.t += 15.0
        return [
            Sample(series, (("host", h), ("service", service)), v, self.t)
            for h, v in values.items()
        ]

    def run(self, samples: list[Sample]) -> list[Anomaly]:
        return [a for a in self.run_all(samples) if a.symptom.endswith("_peer_outlier")]

    def run_all(self, samples: list[Sample]) -> list[Anomaly]:
        store = Store(self.config.path(self.config.state.path))
        try:
            return detect_series(store, self.config, samples)
        finally:
            store.close()


def jumped(value: float = 7.9, host: str = "web-2") -> dict[str, float]:
    return {**CALM, host: value}


def test_hosts_that_agree_are_not_outliers(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    wobble = [0.0, 0.01, -0.01, 0.02, -0.02]
    for i in range(12):
        values = {h: v + wobble[(i + j) % 5] for j, (h, v) in enumerate(CALM.items())}
        assert watch.cycle(values) == []


def test_a_host_that_stays_unlike_its_peers_is_one_outlier_after_for_cycles(
    tmp_path: Path,
) -> None:
    watch = Watch(make_config(tmp_path))
    for _ in range(3):
        assert watch.cycle(CALM) == []
    found = [watch.cycle(jumped()) for _ in range(8)]
    assert [len(f) for f in found] == [0, 0, 1, 0, 0, 0, 0, 0]  # at the 3rd cycle, then quiet
    (anomaly,) = found[2]
    assert (anomaly.host, anomaly.service, anomaly.symptom, anomaly.severity) == (
        "web-2",
        "web",
        "load1_peer_outlier",
        "warning",
    )
    assert anomaly.summary == "load1 on web-2 is 7.9 while its 3 peers' median is 0.4"
    assert anomaly.labels["series"] == 'load1{host="web-2",service="web"}'
    assert anomaly.at == watch.t - 5 * 15.0
    assert watch.cycle(CALM) == []  # back with its peers: the streak ends
    again = [watch.cycle(jumped()) for _ in range(3)]
    assert [len(f) for f in again] == [0, 0, 1]  # a new episode is a new outlier


def test_blips_shorter_than_for_cycles_are_not_outliers(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    for shape in ([jumped()], [jumped(), jumped()]):
        for values in [*shape, CALM, CALM]:
            assert watch.cycle(values) == []


def test_two_hosts_are_no_peer_group(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    for _ in range(6):
        assert watch.cycle({"web-1": 0.4, "web-2": 7.9}) == []


def test_a_missed_scrape_neither_counts_nor_breaks_the_streak(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    without_web2 = {h: v for h, v in CALM.items() if h != "web-2"}
    cycles = [jumped(), jumped(), without_web2, jumped(), jumped()]
    assert [len(watch.cycle(v)) for v in cycles] == [0, 0, 0, 1, 0]


def test_the_streak_survives_a_new_watch_run(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    first = Watch(config)
    assert [first.cycle(jumped()) for _ in range(2)] == [[], []]
    second = Watch(config, first.t)  # another process: only the store file carries state over
    (anomaly,) = second.cycle(jumped())
    assert anomaly.host == "web-2"
    fresh = Watch(make_config(tmp_path / "other"), first.t)  # another store starts afresh
    assert fresh.cycle(jumped()) == []


def test_a_pattern_turns_peers_off_or_tunes_them(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        {"series": "load*", "peer": {"enabled": False}},
        {"series": "latency", "peer": {"for": 1, "limit": 1000.0}},
    )
    watch = Watch(config)
    for _ in range(5):
        assert watch.cycle(jumped()) == []  # load1: off
    assert watch.cycle(jumped(7.9), "latency") == []  # about 500 MADs: under 1000
    (anomaly,) = watch.cycle(jumped(900.0), "latency")  # for 1: at once
    assert anomaly.symptom == "latency_peer_outlier"


def test_different_services_never_form_one_group(tmp_path: Path) -> None:
    watch = Watch(make_config(tmp_path))
    for _ in range(5):
        api = watch.cycle({"web-1": 0.4, "web-2": 0.41}, service="api")
        web = watch.cycle({"web-3": 7.9, "web-4": 8.0}, service="web")
        assert api == web == []
    for _ in range(5):
        watch.t += 15.0
        api = [Sample("load1", (("host", h), ("service", "api")), 0.4, watch.t) for h in HOSTS[:3]]
        db = Sample("load1", (("host", "web-4"), ("service", "db")), 7.9, watch.t)
        assert watch.run([*api, db]) == []


def test_hosts_named_by_instance_are_peers_and_named_from_the_inventory(
    tmp_path: Path,
) -> None:
    watch = Watch(make_config(tmp_path))
    found: list[Anomaly] = []
    for _ in range(3):
        watch.t += 15.0
        found += watch.run(
            [
                Sample(
                    "load1", (("instance", f"10.0.0.{11 + i}:9100"), ("job", "node")), v, watch.t
                )
                for i, v in enumerate(jumped().values())
            ]
        )
    (anomaly,) = found
    assert anomaly.host == "web-2" and anomaly.service == ""
    assert anomaly.summary.startswith("load1 on web-2 is 7.9")


def test_a_floor_keeps_a_single_count_among_zeros_from_being_an_outlier(tmp_path: Path) -> None:
    zeros = dict.fromkeys(HOSTS, 0.0)
    bare = Watch(make_config(tmp_path / "bare"))
    assert [len(bare.cycle({**zeros, "web-2": 1.0}, "errors")) for _ in range(3)] == [0, 0, 1]
    floored = Watch(make_config(tmp_path, {"series": "errors", "peer": {"floor": 1.0}}))
    for _ in range(4):
        assert floored.cycle({**zeros, "web-2": 1.0}, "errors") == []  # 1 spread: under 5
    found = [floored.cycle({**zeros, "web-2": 9.0}, "errors") for _ in range(3)]
    assert [len(f) for f in found] == [0, 0, 1]


def test_an_episode_its_own_detector_labelled_is_not_said_again_by_peers(
    tmp_path: Path,
) -> None:
    watch = Watch(make_config(tmp_path, {"series": "load1", "warmup": 8}))
    wobble = [0.0, 0.01, -0.01, 0.02, -0.02]
    for i in range(40):
        calm = {h: v + wobble[(i + j) % 5] for j, (h, v) in enumerate(CALM.items())}
        assert watch.run_all(watch.next_samples(calm)) == []
    found = [watch.run_all(watch.next_samples(jumped())) for _ in range(6)]
    said = [a.symptom for f in found for a in f]
    assert said == ["load1_anomaly"]  # the ensemble said it at once; peers keep quiet
    assert watch.cycle(CALM) == []
    again = [watch.cycle(jumped()) for _ in range(3)]  # the ensemble: already said, peers: new
    assert [len(f) for f in again] == [0, 0, 1]


@pytest.mark.parametrize("bad", [{"limit": 0}, {"for": 0}, {"floor": -1}, {"unknown": 1}])
def test_peer_settings_refuse_nonsense(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_config(tmp_path, {"series": "x", "peer": bad})


def test_noise_among_three_hosts_is_no_outlier_though_one_moment_can_look_like_one(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    noise = np.zeros((3, 150))
    for t in range(1, 150):  # persistent noise, as load or latency wander
        noise[:, t] = 0.9 * noise[:, t - 1] + rng.normal(0, 0.01, 3)
    values = 0.4 + noise
    moment_only = peer_scores(values, ["web"] * 3) > 0.5  # each cycle's own MAD as the scale
    streaks = np.zeros(3, dtype=int)
    would_fire = 0
    for column in moment_only.T:
        streaks = np.where(column, streaks + 1, 0)
        would_fire += int((streaks == 3).sum())
    assert would_fire >= 2
    watch = Watch(make_config(tmp_path))
    for column in values.T:
        assert watch.cycle(dict(zip(HOSTS[:3], column, strict=True))) == []
    found = [watch.cycle({**dict(zip(HOSTS[:3], values[:, -1], strict=True)), "web-2": 0.9})]
    found += [watch.cycle({"web-1": 0.4, "web-2": 0.9, "web-3": 0.41}) for _ in range(2)]
    assert [len(f) for f in found] == [0, 0, 1]  # a host that stands apart still does
