"""Detect and correlate: verdicts from this cycle's data, then incidents from the verdicts."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.dbwatch import hold_settling
from lazarus.detect.cycle import detect_series
from lazarus.detect.hosts import detect_hosts, suspects, unexplained
from lazarus.detect.skew import JUDGED, skew_anomalies
from lazarus.detect.sources import SourceRead, detect_sources, explained
from lazarus.detect.threshold import detect_probes, detect_thresholds
from lazarus.incidents import (
    close_cleared,
    close_quiet,
    close_returned,
    hosts_down,
    open_incidents,
)
from lazarus.model import Anomaly, Incident, Observation, Sample
from lazarus.store import Store
from tasks.runtime import open_store


@dataclass(frozen=True)
class Correlation:
    opened: list[Incident]
    closed: list[Incident]
    hosts_down: set[str]


@task(name="detect", cache_policy=NO_CACHE)
def detect(
    config: Config,
    observations: list[Observation],
    samples: list[Sample],
    down: dict[str, str] | None = None,
    reads: list[SourceRead] | None = None,
) -> list[Anomaly]:
    """Run the detectors, carrying their state (for-N streaks, per-series statistics) over from
    the previous cycle in the store; ``down``: hosts SSH could not reach (tasks.collect);
    ``reads``: how each source's read went (``source_down``, and its series' silence muted)."""
    reads = reads or []
    store = open_store(config)
    try:
        streaks = store.streaks()
        probe_anomalies, probe_streaks = detect_probes(
            observations, streaks, config.detectors.probe_failures
        )
        host_anomalies, host_streaks = detect_hosts(
            observations,
            config.inventory.hosts,
            down or {},
            streaks,
            config.detectors.probe_failures,
        )
        rule_anomalies, rule_streaks = detect_thresholds(samples, config.detectors.rules, streaks)
        source_anomalies, source_streaks = detect_sources(
            reads, streaks, config.detectors.source_failures, down=down or {}, at=time.time()
        )
        store.save_streaks({**probe_streaks, **host_streaks, **rule_streaks, **source_streaks})
        judged = [s for s in samples if s.series not in JUDGED]  # the skew detector's own
        series_anomalies = unexplained(_statistical(store, config, judged), down or {})
        series_anomalies = explained(series_anomalies, reads)
    finally:
        store.close()
    skew = skew_anomalies(samples, config.detectors.clock.max_offset)
    anomalies = probe_anomalies + host_anomalies + rule_anomalies + series_anomalies + skew
    anomalies += source_anomalies
    for anomaly in anomalies:
        get_run_logger().warning("anomaly %s: %s", anomaly.fingerprint, anomaly.summary)
    return anomalies


def _statistical(store: Store, config: Config, samples: list[Sample]) -> list[Anomaly]:
    """Statistical detection, fenced: a fault in it is logged with its traceback and must not
    keep this cycle's probe and rule verdicts (service_down …) from opening incidents."""
    try:
        return detect_series(store, config, samples)
    except Exception:
        get_run_logger().exception("statistical detection failed this cycle")
        return []


@task(name="correlate", cache_policy=NO_CACHE)
def correlate(
    config: Config,
    anomalies: list[Anomaly],
    observations: list[Observation],
    down: dict[str, str] | None = None,
    reads: list[SourceRead] | None = None,
) -> Correlation:
    """Open incidents for new anomalies; resolve those whose symptom cleared on its own.

    ``down``: the hosts SSH could not reach this cycle; the other suspects answered SSH.
    ``reads``: a source that answered resolves its ``source_down``."""
    store = open_store(config)
    try:
        dialled = {h.name for h in suspects(observations, config.inventory.hosts)}
        cleared = close_cleared(store, observations, dialled - set(down or {}))
        cleared += close_returned(store, [r.fingerprint for r in reads or [] if r.ok])
        anomalies, held = hold_settling(config, store, anomalies, time.time())
        opened = open_incidents(store, anomalies)  # marks this cycle's anomalies seen first:
        quiet = close_quiet(store, time.time(), config.detectors.resolve_after)  # never quiet
        result = Correlation(opened, cleared + quiet, hosts_down(store))
    finally:
        store.close()
    logger = get_run_logger()
    for anomaly in held:
        logger.info("held off while a data recovery settles: %s", anomaly.summary)
    for incident in result.opened:
        logger.warning("incident #%d opened: %s", incident.id, incident.fingerprint)
    for incident in result.closed:
        logger.info("incident #%d resolved: %s", incident.id, incident.reason)
    return result
