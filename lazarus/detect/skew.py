"""Clock skew: a host whose clock is off by more than ``max_offset``, beyond measuring error.

An offset is only known within half the round trip it was measured over (``sources.clock``),
so a host is reported only when ``|offset| - rtt / 2 > max_offset``: a slow link widens the
doubt instead of paging. A host whose RTT sample is missing is judged on its offset alone.

The offset series is judged here alone (``JUDGED``): the statistical detectors skip it, so one
skewed clock is one ``clock_skew`` incident, not also ``clock_offset_seconds_peer_outlier``
(or ``_anomaly``) for the same cause, and an offset within ``max_offset`` never pages. The
incident is reported every cycle while the clock is off, so it cannot resolve before that.
"""

from __future__ import annotations

from collections.abc import Iterable

from lazarus.model import Anomaly, Sample
from lazarus.sources.clock import OFFSET, RTT

JUDGED = frozenset({OFFSET})


def skew_anomalies(samples: Iterable[Sample], max_offset: float) -> list[Anomaly]:
    """``clock_skew`` (warning) for every host whose offset is surely past ``max_offset``."""
    samples = list(samples)
    rtts = {s.label("host"): s.value for s in samples if s.series == RTT}
    anomalies = []
    for sample in samples:
        if sample.series != OFFSET:
            continue
        host = sample.label("host")
        doubt = rtts.get(host, 0.0) / 2
        if abs(sample.value) - doubt > max_offset:
            anomalies.append(
                Anomaly(
                    host=host,
                    service="",
                    symptom="clock_skew",
                    severity="warning",
                    summary=f"clock of {host} is off by {sample.value:+.3f}s (+-{doubt:.3f}s),"
                    f" more than {max_offset:g}s",
                    at=sample.at,
                    labels={"host": host},
                )
            )
    return anomalies
