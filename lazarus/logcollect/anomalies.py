"""Log lines into signals, and new error templates into anomalies.

Every service instance (``web@web-1``) is its own stream in :class:`LogSignals`, so its
warm-up and its "never logged this before" are its own: a template new on web-1 is news even
when web-2 has logged it for weeks.
"""

from __future__ import annotations

from lazarus.logcollect.cycle import LogBatch
from lazarus.logmine import LogFormat, LogSignals, NewTemplate
from lazarus.model import Anomaly, target_name

SYMPTOM = "log_new_error"
_SHOWN = 3


def feed(signals: LogSignals, batch: LogBatch) -> int:
    """Mine every line of ``batch`` at the batch's time; returns the lines fed."""
    formats: dict[str, LogFormat] = {}
    fed = 0
    for f in batch.files:
        fmt = formats.get(f.format) or formats.setdefault(f.format, LogFormat(f.format))
        stream = target_name(f.service, f.host)
        for line in f.lines:
            fields = fmt.split(line) or {"Content": line}
            signals.ingest(stream, fields["Content"], batch.at, fields.get("Level", ""))
            fed += 1
    return fed


def new_error_anomalies(signals: LogSignals, batch: LogBatch) -> list[Anomaly]:
    """One ``log_new_error`` anomaly per instance that logged an error template for the first
    time after its warm-up (the other new-template signals are taken and dropped)."""
    instances = {target_name(f.service, f.host): (f.host, f.service) for f in batch.files}
    found: dict[str, list[NewTemplate]] = {}
    for new in signals.take_new():
        if new.error and new.service in instances:
            found.setdefault(new.service, []).append(new)
    anomalies = []
    for stream, news in found.items():
        host, service = instances[stream]
        shown = "; ".join(n.template for n in news[:_SHOWN])
        more = f" (+{len(news) - _SHOWN} more)" if len(news) > _SHOWN else ""
        anomalies.append(
            Anomaly(
                host=host,
                service=service,
                symptom=SYMPTOM,
                severity="warning",
                summary=f"{stream} logged a new error: {shown}{more}",
                at=batch.at,
                labels={"template_id": news[0].template_id, "templates": str(len(news))},
            )
        )
    return anomalies
