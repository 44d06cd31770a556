"""Backtest: replay Prometheus history through the watch's own detectors, step by step.

Every Prometheus query of the config is read as a range query (in windows of at most
``MAX_POINTS`` steps, the API's limit is 11,000) and its points are fed, one evaluation time at
a time, to ``cycle.detect_series`` on a throw-away store: exactly what watch cycles at that
step would have seen and said, absence included. Only the start of an episode is returned (an
anomaly whose fingerprint also fired at the step before is ongoing), as incidents would open.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from lazarus.config import Config, PrometheusSource
from lazarus.detect.cycle import detect_series
from lazarus.model import Anomaly, Sample
from lazarus.sources import prometheus
from lazarus.store import Store

MAX_POINTS = 10_000


def history(config: Config, start: float, end: float, step: float) -> list[Sample]:
    """Every point of every Prometheus query in ``[start, end]`` at ``step`` seconds."""
    samples = []
    for source in config.sources:
        if not isinstance(source, PrometheusSource):
            continue
        for name, promql in source.queries.items():
            t = start
            while t <= end:
                stop = min(end, t + step * (MAX_POINTS - 1))
                samples += prometheus.query_range(
                    source.url, promql, series=name, start=t, end=stop, step=step
                )
                t = stop + step
    return samples


def replay(config: Config, samples: list[Sample]) -> list[Anomaly]:
    """New anomalies (episode starts) of watch cycles fed ``samples`` grouped by time."""
    by_time: dict[float, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_time[sample.at].append(sample)
    found: list[Anomaly] = []
    before: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="lazarus-backtest-") as tmp:
        store = Store(Path(tmp) / "state.db")
        try:
            for at in sorted(by_time):
                now = detect_series(store, config, by_time[at])
                found += [a for a in now if a.fingerprint not in before]
                before = {a.fingerprint for a in now}
        finally:
            store.close()
    return found
