"""Correlate one cycle's verdicts with the incidents already open.

An anomaly opens an incident unless one is active for its fingerprint; a target that probes
healthy again closes the incidents nobody is acting on, and an incident no detector has
reported for a while (metrics, logs) closes too. Recovery in progress owns its incident
and is left alone: it decides resolved or escalated after verifying.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence

from lazarus import symptoms
from lazarus.config import Config
from lazarus.detect.hosts import HOST_DOWN, answering
from lazarus.detect.sources import SOURCE_DOWN
from lazarus.detect.threshold import PROBE_SYMPTOMS
from lazarus.intake.intake import from_alert
from lazarus.model import Anomaly, Incident, IncidentState, Observation
from lazarus.playbooks import Playbook, may_match
from lazarus.store import Store

log = logging.getLogger(__name__)
ANSWER_CLEARS = PROBE_SYMPTOMS | {HOST_DOWN}  # resolved by an answer, not by quiet


def open_incidents(store: Store, anomalies: Iterable[Anomaly]) -> list[Incident]:
    """Incidents opened by this cycle's anomalies (ongoing ones are not returned again).

    An instance with an active probe incident is one fault: its probe failing another way
    (refused, then "server disconnected" while it restarts) opens nothing new. Nor does what was
    seen before the fault's last incident resolved: a recovery beside the loop may resolve it
    between this cycle's probes and its correlation."""
    anomalies = list(anomalies)
    store.mark_seen(anomalies)
    probed = {i.target: i.fingerprint for i in store.active() if i.symptom in PROBE_SYMPTOMS}
    healed = _resolved_since(store, min((a.at for a in anomalies), default=0.0))
    opened = []
    for anomaly in anomalies:
        if (
            anomaly.symptom in PROBE_SYMPTOMS
            and probed.get(anomaly.target, anomaly.fingerprint) != anomaly.fingerprint
        ):
            continue
        if anomaly.at < healed.get(_fault_of(anomaly.target, anomaly.symptom), float("-inf")):
            continue  # seen before a recovery (beside the cycle) resolved it: stale, not new
        incident, created = store.open_incident(anomaly)
        if created:
            opened.append(incident)
            _check_promise(anomaly)
    return opened


def _fault_of(target: str, symptom: str) -> str:
    """One fault per probe target (down or unhealthy alike), else per fingerprint."""
    return target if symptom in PROBE_SYMPTOMS else f"{target}/{symptom}"


def _resolved_since(store: Store, since: float) -> dict[str, float]:
    """When each fault's newest incident resolved, for those resolved at or after ``since``."""
    with store.transaction() as db:
        rows = db.execute(
            "SELECT fingerprint, symptom, MAX(closed_at) FROM incidents"
            " WHERE state = 'resolved' AND closed_at >= ? GROUP BY fingerprint, symptom",
            (since,),
        ).fetchall()
    healed: dict[str, float] = {}
    for fingerprint, symptom, closed in rows:
        fault = _fault_of(fingerprint.rsplit("/", 1)[0], symptom)
        healed[fault] = max(closed, healed.get(fault, closed))
    return healed


def _check_promise(anomaly: Anomaly) -> None:
    """A detector that breaks the symptom catalogue's promise is a bug: say it where it shows."""
    lacking = symptoms.missing(anomaly.symptom, anomaly.labels)
    if lacking:
        log.error("%s lacks the label(s) %s its symptom promises (lazarus/symptoms.py): playbooks"
                  " that use them will fail", anomaly.fingerprint, ", ".join(lacking))  # fmt: skip


def close_cleared(
    store: Store, observations: Iterable[Observation], answered: Iterable[str] = ()
) -> list[Incident]:
    """Resolve probe incidents whose target answers healthy now and which nobody is acting on;
    a host that answers again (any probe, or SSH: ``answered``) resolves its ``host_down``."""
    observations = list(observations)
    healthy = {o.target for o in observations if o.ok} | answering(observations) | set(answered)
    closed = []
    for incident in store.active():
        if incident.symptom not in ANSWER_CLEARS or incident.target not in healthy:
            continue
        what = "the host answers again" if incident.symptom == HOST_DOWN else "the probe passes"
        done = store.transition(
            incident.id,
            IncidentState.RESOLVED,
            reason=f"symptom cleared: {what}",
            expect=(IncidentState.OPEN, IncidentState.NOTIFIED, IncidentState.ESCALATED),
        )
        if done is not None:
            closed.append(done)
    return closed


def close_returned(store: Store, answered: Iterable[str]) -> list[Incident]:
    """Resolve the ``source_down`` incidents (by fingerprint) of sources that answered again."""
    back = set(answered)
    closed = []
    for incident in store.active():
        if incident.symptom != SOURCE_DOWN or incident.fingerprint not in back:
            continue
        done = store.transition(
            incident.id,
            IncidentState.RESOLVED,
            reason="symptom cleared: the source answers again",
            expect=(IncidentState.OPEN, IncidentState.NOTIFIED, IncidentState.ESCALATED),
        )
        if done is not None:
            closed.append(done)
    return closed


def close_quiet(store: Store, now: float, after: float) -> list[Incident]:
    """Resolve incidents without a probe (metrics, logs, clocks) that no detector has reported
    for ``after`` seconds and which nobody is acting on: the condition is gone. An alert's
    incident waits for the alert's resolved notice instead."""
    closed = []
    for incident in store.active():
        seen = store.last_seen(incident.fingerprint) or incident.detected_at
        if incident.symptom in ANSWER_CLEARS or from_alert(incident) or now - seen < after:
            continue
        done = store.transition(
            incident.id,
            IncidentState.RESOLVED,
            reason=f"not reported for {after:g}s: the condition has cleared",
            expect=(IncidentState.OPEN, IncidentState.NOTIFIED, IncidentState.ESCALATED),
        )
        if done is not None:
            closed.append(done)
    return closed


def remediable(
    config: Config,
    books: Mapping[str, Playbook],
    incident: Incident,
    hosts_down: Collection[str] = (),
) -> bool:
    """Whether automatic recovery may act: enabled, a playbook may match once diagnosed, and
    the incident is not a service on a host that is down (its host_down's recovery acts)."""
    if incident.service and incident.host in hosts_down:
        return False
    return config.recovery.enabled and any(may_match(b, incident) for b in books.values())


def dependencies_first(config: Config, incidents: Sequence[Incident]) -> list[Incident]:
    """``incidents`` with those of a service or database that others ``depends_on`` first:
    their recovery is what the dependants' recoveries wait for, so it starts first."""
    needed = config.inventory.depended_on()
    return sorted(incidents, key=lambda i: i.service not in needed)


def asks_approval(books: Mapping[str, Playbook], incident: Incident) -> bool:
    """Whether whichever playbook diagnosis picks for the incident waits for a person first."""
    matching = [b for b in books.values() if may_match(b, incident)]
    return bool(matching) and all(b.needs_approval() for b in matching)


def hosts_down(store: Store) -> set[str]:
    """Hosts with an active ``host_down`` incident."""
    return {i.host for i in store.active() if i.symptom == HOST_DOWN}
