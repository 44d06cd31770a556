"""Detect and correlate: verdicts from this cycle's data, then incidents from the verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.detect.threshold import detect_probes, detect_thresholds
from lazarus.incidents import close_cleared, open_incidents
from lazarus.model import Anomaly, Incident, Observation, Sample
from tasks.runtime import open_store


@dataclass(frozen=True)
class Correlation:
    opened: list[Incident]
    closed: list[Incident]


@task(name="detect", cache_policy=NO_CACHE)
def detect(config: Config, observations: list[Observation], samples: list[Sample]) -> list[Anomaly]:
    """Run the detectors, carrying their for-N streaks over from the previous cycle."""
    store = open_store(config)
    try:
        streaks = store.streaks()
        probe_anomalies, probe_streaks = detect_probes(
            observations, streaks, config.detectors.probe_failures
        )
        rule_anomalies, rule_streaks = detect_thresholds(samples, config.detectors.rules, streaks)
        store.save_streaks({**probe_streaks, **rule_streaks})
    finally:
        store.close()
    anomalies = probe_anomalies + rule_anomalies
    for anomaly in anomalies:
        get_run_logger().warning("anomaly %s: %s", anomaly.fingerprint, anomaly.summary)
    return anomalies


@task(name="correlate", cache_policy=NO_CACHE)
def correlate(
    config: Config, anomalies: list[Anomaly], observations: list[Observation]
) -> Correlation:
    """Open incidents for new anomalies; resolve those whose symptom cleared on its own."""
    store = open_store(config)
    try:
        result = Correlation(open_incidents(store, anomalies), close_cleared(store, observations))
    finally:
        store.close()
    logger = get_run_logger()
    for incident in result.opened:
        logger.warning("incident #%d opened: %s", incident.id, incident.fingerprint)
    for incident in result.closed:
        logger.info("incident #%d resolved: %s", incident.id, incident.reason)
    return result
