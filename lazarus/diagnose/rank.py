"""Rank the probable causes of an incident from its evidence bundle, deterministically.

Scoring. Every finding supports one cause ``(name, target)`` with a probability ``p``; a cause's
confidence is the noisy-OR of its supports, ``1 - prod(1 - p)``, so independent findings for
the same cause add up without passing 1. The findings and their ``p``:

``dependency_down`` (target: the upstream service)
    an incident, with onset in the window, on a service the incident's service needs, ``d``
    hops up the graph: ``0.8 * 0.95**(d - 1)``, plus 0.1 for the upstream service with the
    earliest onset (the root of a cascade); only 0.3 when it began after this incident.
``host_fault`` (target: the host)
    ``n`` other services failing on the same host in the window: ``min(0.4 + 0.15 n, 0.8)``;
    a host-level incident (no service) there: 0.9, or 0.4 when a statistical detector raised
    it (it has a ``series`` label: a metric looked unusual, not a host fault one can name).
``service_wide`` (target: the service)
    at least half of the service's other hosts fail too: ``0.3 + 0.4 * fraction``.
signature causes (``oom``, ``disk_full``, ``dependency_refused``, ``fd_exhausted``, ...)
    a signature matches lines of the incident's host (its own service's, host-level ones and
    the service's mined templates weigh 1; other services' lines on that host 0.7) or the
    incident's summary (0.9): ``confidence * weight + 0.03`` per further matching line (three
    at most). ``dependency_refused`` targets the dependency a line names (service, host or
    address), else the only direct dependency; with no dependency known, ``p`` is halved.
``bad_release`` / ``recent_change`` (target: the service)
    a change to the service (or its host) before onset: ``0.5 + 0.3 * (1 - age / window)`` for
    a release, 0.8 times that for any other change.
``local_fault`` (target: the incident's target)
    the floor, always present: 0.3; 0.4 when the service has peers and none of them fails.
learnt causes (any name the labelled history used; :mod:`.classifier`)
    with a trained model, its top causes at their probability, capped at 0.7; the target is that
    of the strongest other support of the same cause, else the incident's target.

Causes sort by confidence (rounded to three places), then by name and target.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lazarus.diagnose.classifier import Classifier
from lazarus.diagnose.evidence import Evidence, LogLine
from lazarus.diagnose.features import of_evidence, relevant
from lazarus.diagnose.graph import DependencyGraph
from lazarus.diagnose.signatures import Signature
from lazarus.model import Incident

EXAMPLES = 3  # matching lines quoted per signature
# A host metric's anomaly (disk_used_ratio a hair above its record) weighs no more than a
# fault confined to the target: it must not outrank a release switched just before onset.
STATISTICAL_HOST_P = 0.4


@dataclass(frozen=True)
class Cause:
    """A probable cause: what (``name``, as playbooks match ``cause=``), where, how sure, why."""

    name: str
    confidence: float
    evidence: list[str]
    target: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.target})" if self.target else self.name


class _Support(NamedTuple):
    name: str
    target: str
    p: float
    text: str


def rank(
    evidence: Evidence,
    graph: DependencyGraph,
    signatures: Sequence[Signature],
    model: Classifier | None = None,
) -> list[Cause]:
    """Every supported cause, most probable first; ``model`` adds the learnt causes."""
    supports = [
        *_dependencies(evidence, graph),
        *_host(evidence),
        *_peers(evidence),
        *_signatures(evidence, graph, signatures),
        *_changes(evidence),
        _local(evidence),
    ]
    if model is not None:
        supports += _learnt(evidence, graph, model, supports)
    grouped: dict[tuple[str, str], list[_Support]] = {}
    for support in supports:
        grouped.setdefault((support.name, support.target), []).append(support)
    causes = [
        Cause(
            name,
            round(1.0 - math.prod(1.0 - min(s.p, 1.0) for s in group), 3),
            [s.text for s in group],
            target,
        )
        for (name, target), group in grouped.items()
    ]
    return sorted(causes, key=lambda c: (-c.confidence, c.name, c.target))


def _dependencies(ev: Evidence, graph: DependencyGraph) -> Iterator[_Support]:
    onset = ev.incident.detected_at
    upstream = graph.upstream(ev.incident.service)
    down: dict[str, list[Incident]] = {}
    for other in ev.related:
        if other.service in upstream:
            down.setdefault(other.service, []).append(other)
    if not down:
        return
    first = {service: min(i.detected_at for i in found) for service, found in down.items()}
    earliest = min(first.values())
    for service in sorted(down):
        hops = upstream[service]
        if first[service] <= onset:
            p = 0.8 * 0.95 ** (hops - 1) + (0.1 if first[service] == earliest else 0.0)
        else:
            p = 0.3
        path = "a direct dependency" if hops == 1 else f"{hops} hops upstream"
        facts = "; ".join(_onset(i, onset) for i in down[service])
        yield _Support(
            "dependency_down", service, p, f"{service} is {path} of {ev.incident.service}: {facts}"
        )


def _host(ev: Evidence) -> Iterator[_Support]:
    incident = ev.incident
    same = [i for i in ev.related if i.host == incident.host and i.service != incident.service]
    onset = incident.detected_at
    for other in (i for i in same if not i.service):
        p = STATISTICAL_HOST_P if "series" in other.labels else 0.9
        yield _Support("host_fault", incident.host, p, f"host-level: {_onset(other, onset)}")
    services = sorted({i.service for i in same if i.service})
    if services:
        facts = "; ".join(_onset(i, onset) for i in same if i.service)
        p = min(0.4 + 0.15 * len(services), 0.8)
        text = f"{len(services)} other service(s) fail on {incident.host} too: {facts}"
        yield _Support("host_fault", incident.host, p, text)


def _peers(ev: Evidence) -> Iterator[_Support]:
    failing = [p for p in ev.peers if p.failing]
    if not ev.peers or len(failing) * 2 < len(ev.peers) or not failing:
        return
    fraction = len(failing) / len(ev.peers)
    hosts = ", ".join(f"{p.host} ({'/'.join(p.symptoms)})" for p in failing)
    text = f"{len(failing)} of {len(ev.peers)} other hosts of {ev.incident.service} fail: {hosts}"
    yield _Support("service_wide", ev.incident.service, 0.3 + 0.4 * fraction, text)


def _weight(incident: Incident, line: LogLine) -> float:
    """How much a line speaks for this incident: 0 = not at all (another host's line), 0.7 for
    another service's line on its host."""
    if not relevant(incident, line):
        return 0.0
    return 1.0 if line.service in (incident.service, "") or line.host != incident.host else 0.7


def _signatures(
    ev: Evidence, graph: DependencyGraph, signatures: Sequence[Signature]
) -> Iterator[_Support]:
    incident = ev.incident
    weighted = [(w, line) for line in ev.lines if (w := _weight(incident, line)) > 0]
    summary = LogLine(incident.host, "summary", incident.summary)
    for sig in signatures:
        candidates = weighted if "logs" in sig.scope else []
        if "summary" in sig.scope:
            candidates = [*candidates, (0.9, summary)]
        hits = [(w, line) for w, line in candidates if sig.search(line.line)]
        if not hits:
            continue
        p = sig.confidence * max(w for w, _ in hits) + 0.03 * min(len(hits) - 1, 3)
        target = incident.target
        if sig.cause == "dependency_refused":
            deps = list(graph.needs.get(incident.service, ()))
            named = next((n for _, line in hits if (n := graph.named_in(line.line, deps))), None)
            target = named or (deps[0] if len(deps) == 1 else "")
            p = p if deps else p / 2
        quoted = "; ".join(
            f"{line.host or '*'}/{line.service}: {line.line.strip()[:200]!r}"
            for _, line in hits[:EXAMPLES]
        )
        text = f"signature {sig.name} matched {len(hits)} line(s): {quoted}"
        yield _Support(sig.cause, target, min(p, 0.99), text)


def _changes(ev: Evidence) -> Iterator[_Support]:
    incident = ev.incident
    for change in ev.changes:
        if change.service != incident.service or change.host not in ("", incident.host):
            continue
        age = incident.detected_at - change.at
        p = 0.5 + 0.3 * (1.0 - age / ev.before_s)
        release = change.kind == "release"
        text = f"{change.kind} {_ago(age)} before onset: {change.description}"
        yield _Support(
            "bad_release" if release else "recent_change",
            incident.service,
            p if release else 0.8 * p,
            text,
        )


def _local(ev: Evidence) -> _Support:
    if ev.peers and not any(p.failing for p in ev.peers):
        text = f"confined to {ev.incident.host}: its {len(ev.peers)} peer host(s) are healthy"
        return _Support("local_fault", ev.incident.target, 0.4, text)
    return _Support("local_fault", ev.incident.target, 0.3, "the target itself (the default)")


def _learnt(
    ev: Evidence, graph: DependencyGraph, model: Classifier, found: list[_Support]
) -> Iterator[_Support]:
    strongest = {s.name: s.target for s in sorted(found, key=lambda s: s.p)}
    for name, p, text in model.supports(of_evidence(ev, graph)):
        yield _Support(name, strongest.get(name, ev.incident.target), p, text)


def _onset(other: Incident, onset: float) -> str:
    lead = onset - other.detected_at
    when = f"{_ago(lead)} before" if lead >= 0 else f"{_ago(-lead)} after"
    return f"{other.target} {other.symptom} (#{other.id}, {other.state}) began {when} this incident"


def _ago(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"
