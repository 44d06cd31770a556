from __future__ import annotations

from lazarus.config import ThresholdRule
from lazarus.detect.threshold import detect_probes, detect_thresholds
from lazarus.model import Observation, Sample


def obs(host: str, ok: bool, detail: str = "ok") -> Observation:
    return Observation(host=host, service="web", ok=ok, detail=detail, at=1.0)


def test_probe_fires_only_after_n_failures_in_a_row() -> None:
    streaks: dict[str, int] = {}
    fired = []
    for cycle_ok in [False, True, False, False]:
        anomalies, streaks = detect_probes(
            [obs("h1", cycle_ok, "refused: x"), obs("h2", True)], streaks, failures=2
        )
        fired.append([a.fingerprint for a in anomalies])
    assert fired == [[], [], [], ["web@h1/service_down"]]


def test_probe_symptom_tells_dead_from_unhealthy() -> None:
    anomalies, _ = detect_probes(
        [
            obs("h1", False, "refused: conn"),
            obs("h2", False, "timeout: 1s"),
            obs("h3", False, "status 500"),
        ],
        {},
        failures=1,
    )
    assert [a.symptom for a in anomalies] == [
        "service_down",
        "service_unhealthy",
        "service_unhealthy",
    ]


def test_threshold_rule_with_for() -> None:
    rule = ThresholdRule.model_validate({"series": "load1", "above": 4, "for": 2})
    labels = (("host", "h1"),)
    streaks: dict[str, int] = {}
    out = []
    for value in [5, 5, 3, 9]:
        anomalies, streaks = detect_thresholds(
            [Sample("load1", labels, value, 0.0)], [rule], streaks
        )
        out.append([(a.host, a.symptom) for a in anomalies])
    assert out == [[], [("h1", "load1_out_of_bounds")], [], []]
    assert (
        "load1 = 5 > 4"
        in detect_thresholds(
            [Sample("load1", labels, 5, 0.0)], [rule], {"rule:load1:[('host', 'h1')]": 1}
        )[0][0].summary
    )
