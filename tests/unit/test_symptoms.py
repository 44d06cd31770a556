"""The symptom catalogue: what each symptom promises, and detectors keeping those promises."""

from __future__ import annotations

from lazarus import symptoms
from lazarus.config import ThresholdRule
from lazarus.detect.skew import skew_anomalies
from lazarus.detect.threshold import detect_probes, detect_thresholds
from lazarus.model import Observation, Sample
from lazarus.sources.clock import OFFSET
from lazarus.sources.ssh_metrics import parse

DF = "x\n--lazarus-section--\nMemTotal: 10 kB\n--lazarus-section--\nh\n/dev/x 100 97 3 97% /srv\n"


def test_patterns_cover_series_named_symptoms() -> None:
    assert symptoms.lookup("disk_used_ratio_anomaly").labels == {"series"}
    assert symptoms.promised("no_such_symptom") == frozenset()


def test_a_trigger_promises_the_labels_all_its_symptoms_set() -> None:
    assert symptoms.guaranteed(['symptom="disk_full"']) == {"host", "mount"}
    assert symptoms.guaranteed(['symptom=~"disk_full|clock_skew"']) == {"host"}
    assert symptoms.guaranteed(['cause="bad_release"']) == frozenset()
    assert symptoms.guaranteed(['cause="bad_release"', 'team=~".+"']) == {"team"}
    assert symptoms.guaranteed(['symptom="service_down"', 'team=~".*"']) == frozenset()


def test_registering_twice_is_refused() -> None:
    try:
        symptoms.register("service_down", raised_by="again")
    except ValueError as exc:
        assert "twice" in str(exc)
    else:
        raise AssertionError("a second service_down was accepted")


def test_the_disk_full_rule_sets_what_the_catalogue_promises() -> None:
    rule = ThresholdRule(series="disk_used_ratio", above=0.9, symptom="disk_full")
    (found,), _ = detect_thresholds(parse(DF, host="web-1", at=1.0), [rule], {})
    assert found.symptom == "disk_full" and found.host == "web-1"
    assert symptoms.missing(found.symptom, found.labels) == []


def test_probe_and_clock_detectors_keep_their_promises() -> None:
    probes, _ = detect_probes([Observation("web-1", "api", False, "refused", 1.0)], {}, 1)
    skew = skew_anomalies([Sample(OFFSET, (("host", "web-1"),), 9.0, 1.0)], 0.5)
    for anomaly in [*probes, *skew]:
        assert symptoms.lookup(anomaly.symptom) is not None
        assert symptoms.missing(anomaly.symptom, anomaly.labels) == []
