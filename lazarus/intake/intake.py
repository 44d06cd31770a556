"""Alerts in, incidents out: one incident per alert firing, closed by its resolved notice.

An alert is known by its sender's fingerprint and the time it started firing: a repeat of the
same firing (Alertmanager re-sends on ``repeat_interval``, or retries) finds the incident it
opened, even after Lazarus resolved it; a new firing of the same alert opens a new one. An
alert for a target the watch already has an incident for joins that incident (one incident
per fault). The alert's labels are kept on the incident (``source``, ``alertname`` and the rest)
for playbooks and routes; ``symptom`` comes from the ``symptom`` label, else ``alertname``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lazarus.config import Config
from lazarus.intake.payload import Alert
from lazarus.intake.targets import UnknownTarget, resolve_target
from lazarus.model import Anomaly, Incident, IncidentState
from lazarus.store import Store

log = logging.getLogger(__name__)


# Labels Lazarus sets itself from the inventory; the alert's own values are kept under alert_*.
_OWN = ("host", "service", "symptom", "severity")


def from_alert(incident: Incident) -> bool:
    """Whether an alert opened the incident: its resolved notice closes it, not quiet."""
    return "alert_fingerprint" in incident.labels


@dataclass
class IntakeResult:
    opened: list[Incident] = field(default_factory=list)
    ongoing: list[int] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "opened": [i.id for i in self.opened],
            "ongoing": self.ongoing,
            "resolved": [i.id for i in self.resolved],
            "rejected": self.rejected,
        }


class AlertIntake:
    """Turns webhook alerts into incidents in the store (safe to call from many threads)."""

    def __init__(self, config: Config, store: Store, source: str):
        self.config, self.store, self.source = config, store, source

    def receive(self, alerts: list[Alert]) -> IntakeResult:
        result = IntakeResult()
        for alert in alerts:
            try:
                host, service = resolve_target(self.config.inventory, alert.labels)
            except UnknownTarget as exc:
                log.warning("alert %s from %s refused: %s", alert.key, self.source, exc)
                result.rejected.append({"fingerprint": alert.key, "reason": str(exc)})
                continue
            known = self._incident_of(alert)
            if alert.status == "resolved":
                closed = self._resolve(known) if known is not None else None
                if closed is not None:
                    result.resolved.append(closed)
            elif known is not None:
                result.ongoing.append(known)
            else:
                incident, created = self.store.open_incident(self._anomaly(alert, host, service))
                self._remember(alert, incident.id)
                if created:
                    result.opened.append(incident)
                else:
                    result.ongoing.append(incident.id)
        return result

    def _anomaly(self, alert: Alert, host: str, service: str) -> Anomaly:
        labels = alert.labels
        symptom = labels.get("symptom") or labels.get("alertname") or "alert"
        kept = {k: v for k, v in labels.items() if k not in _OWN}
        kept.update({f"alert_{k}": labels[k] for k in ("host", "service") if k in labels})
        summary = alert.annotations.get("summary") or alert.annotations.get("description", "")
        return Anomaly(
            host=host,
            service=service,
            symptom=symptom,
            severity=labels.get("severity", "critical"),
            summary=summary or f"{self.source} alert {labels.get('alertname', alert.key)}",
            at=alert.startsAt.timestamp(),
            labels={**kept, "source": self.source, "alert_fingerprint": alert.key},
        )

    def _incident_of(self, alert: Alert) -> int | None:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT incident_id FROM intake_alerts WHERE fingerprint = ? AND starts_at = ?",
                (alert.key, alert.startsAt.isoformat()),
            ).fetchone()
        return None if row is None else int(row[0])

    def _remember(self, alert: Alert, incident_id: int) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO intake_alerts (fingerprint, starts_at, incident_id) VALUES (?, ?, ?)"
                " ON CONFLICT (fingerprint, starts_at) DO NOTHING",
                (alert.key, alert.startsAt.isoformat(), incident_id),
            )

    def _resolve(self, incident_id: int) -> Incident | None:
        """Close the incident unless a recovery owns it (that one verifies and closes itself)."""
        return self.store.transition(
            incident_id,
            IncidentState.RESOLVED,
            reason=f"{self.source}: the alert resolved",
            expect=(IncidentState.OPEN, IncidentState.NOTIFIED, IncidentState.ESCALATED),
        )
