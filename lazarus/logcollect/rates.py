"""Error-template rates as detector series: an error template that spikes is an anomaly.

Each error-level template of each service instance is one series ``log_error_rate{host,
service, template_id}`` whose points are :class:`LogSignals` buckets (lines per bucket, zeros
included). They go through the same statistical detection as the metrics
(:func:`lazarus.detect.cycle.detect_series`): per-series ensemble state kept in the store
between runs, a point taken once (only buckets newer than the series' last point), the first
point of an episode said once. ``detectors.anomaly`` entries matching ``log_error_rate`` tune
it; counts there are in buckets.

A bucket is only scored once it is complete (the one the cycle is in still fills), so a spike
is reported one bucket after it starts. The ensemble flags unusual points both ways; a
``log_error_spike`` also needs the count to clear ``logs.spike`` (at least ``min_count`` lines
and ``ratio`` times the template's mean over the hour before): a steady error rate, however
high, and a drop in errors stay quiet, a quiet template that starts erroring hard does not.

Lines are counted in the bucket of the cycle that read them, not of their own timestamp: a
backlog read at once (Lazarus stopped, a host unreachable for a while) lands in one bucket.
A template seen for the first time is ``log_new_error``'s news; here it only starts learning.
"""

from __future__ import annotations

import math

import numpy as np

from lazarus.config import Config, Watch
from lazarus.detect.cycle import detect_series, known_series, series_key
from lazarus.logcollect.cycle import LogBatch
from lazarus.logmine import LogSignals
from lazarus.model import Anomaly, Sample, target_name
from lazarus.store import Store

SERIES = "log_error_rate"
SYMPTOM = "log_error_spike"
BACKFILL = 60  # buckets looked at: the baseline window, and the history a new series starts with


def error_spikes(
    signals: LogSignals, batch: LogBatch, store: Store, config: Config
) -> list[Anomaly]:
    """Feed the complete buckets of every error template of the batch's instances to the
    detectors; one ``log_error_spike`` per template whose count spiked above its own history."""
    instances = {target_name(f.service, f.host): (f.host, f.service) for f in batch.files if f.host}
    matrix = signals.rates(batch.at - signals.bucket_s, BACKFILL)
    last = {k: r.last_at for k, r in known_series(store).items() if r.series == SERIES}
    rows: dict[tuple[str, str, str], np.ndarray] = {}
    samples: list[Sample] = []
    for (stream, tid), values in zip(matrix.names, matrix.values, strict=True):
        if stream not in instances or not signals.is_error(tid):
            continue
        host, service = instances[stream]
        rows[(host, service, tid)] = values
        labels = (("host", host), ("service", service), ("template_id", tid))
        newer = matrix.starts > last.get(series_key(SERIES, labels), -math.inf)
        samples += [
            Sample(SERIES, labels, float(v), float(at))
            for v, at in zip(values[newer], matrix.starts[newer], strict=True)
        ]
    if not samples:
        return []
    # The series' step is a bucket, not a watch cycle: seasons become points of that step.
    bucketed = config.model_copy(update={"watch": Watch(interval=signals.bucket_s)})
    spikes = []
    for found in detect_series(store, bucketed, samples):
        if found.symptom != f"{SERIES}_anomaly":
            continue  # <series>_absent: an instance whose log was not listed this cycle
        tid = found.labels["template_id"]
        values = rows[(found.host, found.service, tid)]
        at = round((found.at - matrix.starts[0]) / signals.bucket_s)
        count, before = float(values[at]), values[:at]
        baseline = float(before.mean()) if len(before) else 0.0
        spike = config.logs.spike
        if count >= spike.min_count and count >= spike.ratio * baseline:
            spikes.append(_anomaly(signals, found, count, baseline, tid))
    return spikes


def _anomaly(
    signals: LogSignals, found: Anomaly, count: float, baseline: float, tid: str
) -> Anomaly:
    per_minute = 60.0 / signals.bucket_s
    rate, usual = count * per_minute, baseline * per_minute
    stream = target_name(found.service, found.host)
    template = signals.miner.template(tid)
    return Anomaly(
        host=found.host,
        service=found.service,
        symptom=SYMPTOM,
        severity="warning",
        summary=f"{stream} error rate spiked to {rate:g}/min (baseline {usual:.2g}/min): "
        f"{template}",
        at=found.at,
        labels={
            "template_id": tid,
            "rate_per_min": f"{rate:g}",
            "baseline_per_min": f"{usual:.3g}",
            "series": found.labels["series"],
        },
    )
