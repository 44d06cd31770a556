"""Sources that fail: a source Lazarus cannot read for ``failures`` cycles in a row is an
incident of its own, ``source_down``, and not a silent WARNING.

A source is what brings data: a Prometheus server, the SSH metrics of one host, the log files
and journals of one host. Each cycle says how each read went (``SourceRead``). While one fails,
the series it brings say nothing about the fleet, so their statistical verdicts (a host's
``load1_absent`` when its SSH metrics stop) are dropped (``explained``): the outage is one
incident, not a flood. A host SSH cannot reach is ``host_down``'s, so its reads are not counted
here. The incident resolves as soon as the source answers again (``lazarus.incidents``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from lazarus.config import PrometheusSource
from lazarus.detect.threshold import advance
from lazarus.logcollect import LogBatch
from lazarus.model import Anomaly, target_name
from lazarus.sources.prometheus import without_credentials
from lazarus.sources.ssh_metrics import SERIES as SSH_SERIES
from lazarus.sources.ssh_metrics import Readings

SOURCE_DOWN = "source_down"
ERROR_CHARS = 300  # of the error in the incident's label: enough to say what, never a dump


@dataclass(frozen=True)
class SourceRead:
    """How one source's read went this cycle; ``error`` is empty when it answered.

    ``source`` is its kind (``prometheus``, ``ssh_metrics``, ``logs``), ``where`` the server's
    ``host:port`` or the inventory host, ``host`` that inventory host for a per-host source,
    ``series`` the series names it brings."""

    source: str
    where: str
    error: str = ""
    host: str = ""
    series: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def fingerprint(self) -> str:
        """The fingerprint of this source's ``source_down`` incident."""
        return f"{target_name(self.source, self.where)}/{SOURCE_DOWN}"


def redact(text: str) -> str:
    """An error fit for a label, a message and the store: no credentials, one line, short."""
    line = " ".join(without_credentials(text).split())
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def prometheus_read(source: PrometheusSource, error: str = "") -> SourceRead:
    """A Prometheus server's read: ``where`` is its host:port, never its credentials."""
    parts = urlsplit(source.url)
    where = parts.netloc.rpartition("@")[2] or source.url
    shown = f"{parts.scheme}://{where}{parts.path}".rstrip("/")
    return SourceRead(
        "prometheus", where, redact(error), series=tuple(source.queries), labels=(("url", shown),)
    )


def ssh_metrics_reads(hosts: Iterable[str], found: Readings) -> list[SourceRead]:
    """One read per host of an ``ssh_metrics`` source."""
    return [
        SourceRead("ssh_metrics", h, redact(found.failed.get(h, "")), host=h, series=SSH_SERIES)
        for h in hosts
    ]


def log_reads(batch: LogBatch) -> list[SourceRead]:
    """One read per host of the configured log files and journals: failing while any fails."""
    errors: dict[str, list[str]] = {}
    for f in batch.files:
        if f.host:  # a file of a service the inventory lacks is a config error, said elsewhere
            errors.setdefault(f.host, []).extend([f"{f.path}: {f.error}"] if f.error else [])
    return [
        SourceRead("logs", host, redact("; ".join(why)), host=host) for host, why in errors.items()
    ]


def detect_sources(
    reads: Iterable[SourceRead],
    streaks: Mapping[str, int],
    failures: int,
    *,
    down: Iterable[str] = (),
    at: float,
) -> tuple[list[Anomaly], dict[str, int]]:
    """``source_down`` for each source failing ``failures`` cycles in a row; the new streaks.

    Reads of hosts in ``down`` (SSH cannot reach them: ``host_down``) count neither way."""
    unreachable = set(down)
    counted = [r for r in reads if not r.host or r.host not in unreachable]
    new = advance(streaks, {_key(r): not r.ok for r in counted})
    anomalies = [
        Anomaly(
            host=r.where,
            service=r.source,
            symptom=SOURCE_DOWN,
            severity="critical",
            summary=f"{r.source} on {r.where} failed {new[_key(r)]} cycles in a row: {r.error}",
            at=at,
            labels={**dict(r.labels), "source": r.source, "error": r.error},
        )
        for r in counted
        if new.get(_key(r), 0) >= failures
    ]
    return anomalies, new


def explained(anomalies: Iterable[Anomaly], reads: Sequence[SourceRead]) -> list[Anomaly]:
    """The series anomalies that a failing source does not explain: a series of a source that
    failed this cycle (on that host, for a per-host source) is silent because of it."""
    failing = [r for r in reads if not r.ok]
    return [a for a in anomalies if not any(_silenced_by(a, r) for r in failing)]


def _silenced_by(anomaly: Anomaly, read: SourceRead) -> bool:
    series = anomaly.labels.get("series", "").partition("{")[0]
    return series in read.series and (not read.host or anomaly.host == read.host)


def _key(read: SourceRead) -> str:
    return f"source:{read.source}@{read.where}"
