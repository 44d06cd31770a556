"""Everything diagnosis looks at for one incident, gathered in one place before any scoring.

The bundle holds the incident, the other incidents whose onset falls in a window around it
(default 10 minutes before to 2 minutes after: causes start first, slower detectors fire a
little later) and that still failed when it began, the state of the service's peer hosts, log
lines, and the changes made before onset that its target has not come through healthy since.
Logs and changes are optional inputs: plain ``(host, service, line)`` tuples or the mined
templates of :meth:`lazarus.logmine.LogSignals.top_templates`; changes from a release
or config source when one is configured, none otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from lazarus.config import Config
from lazarus.logmine.signals import TemplateActivity
from lazarus.model import Incident, IncidentState
from lazarus.store import Store

BEFORE_S = 600.0
AFTER_S = 120.0
HISTORY = 500  # newest incidents read for the window; older ones are long outside it
MAX_LINES = 5000  # newest log lines kept; a storm of one message adds nothing past this


class LogLine(NamedTuple):
    """One log line; ``host`` empty = any host of ``service`` (a mined template)."""

    host: str
    service: str
    line: str


@dataclass(frozen=True)
class Change:
    """Something people changed: a release (``kind="release"``), a config push, a migration."""

    at: float
    service: str
    kind: str
    description: str
    host: str = ""


@dataclass(frozen=True)
class Peer:
    """Another host of the incident's service and the symptoms active on it there."""

    host: str
    symptoms: tuple[str, ...]

    @property
    def failing(self) -> bool:
        return bool(self.symptoms)


@dataclass(frozen=True)
class Evidence:
    """What one incident's diagnosis read; ``related`` oldest first, ``changes`` too."""

    incident: Incident
    related: tuple[Incident, ...]
    peers: tuple[Peer, ...]
    lines: tuple[LogLine, ...]
    changes: tuple[Change, ...]
    before_s: float = BEFORE_S
    after_s: float = AFTER_S


def _line(item: tuple[str, str, str] | TemplateActivity) -> LogLine:
    """A mined template counts as a line of its service on no host in particular."""
    if isinstance(item, TemplateActivity):
        return LogLine("", item.service, item.template)
    return LogLine(*item)


def failing_before(config: Config) -> float:
    """How long before its detection an incident's target may have been failing: the probes
    that failed in a row, and the cycle before them."""
    return config.watch.interval * (config.detectors.probe_failures + 1)


def _healed_before(other: Incident, began: float) -> bool:
    """``other`` resolved before this incident's target could have begun failing: a dependency
    restarted minutes ago, a disk cleaned, explains nothing about a fault now."""
    return other.state is IncidentState.RESOLVED and (other.closed_at or began) < began


def _healed_after(own: Incident, at: float, onset: float) -> bool:
    """An earlier incident of the same target resolved after a change made at ``at``: the
    target came through healthy since (a bad release rolled back), so a new fault is not that
    change's."""
    return own.state is IncidentState.RESOLVED and at <= (own.closed_at or 0.0) <= onset


def gather(
    store: Store,
    config: Config,
    incident: Incident,
    *,
    lines: Iterable[tuple[str, str, str] | TemplateActivity] = (),
    changes: Iterable[Change] = (),
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
) -> Evidence:
    """The evidence bundle of ``incident`` from the store, the config and the optional inputs."""
    active = store.active()
    seen = {i.id: i for i in [*store.recent(HISTORY), *active] if i.id != incident.id}
    onset = incident.detected_at
    began = onset - failing_before(config)
    related = sorted(
        (
            i
            for i in seen.values()
            if onset - before_s <= i.detected_at <= onset + after_s and not _healed_before(i, began)
        ),
        key=lambda i: (i.detected_at, i.id),
    )
    symptoms: dict[str, list[str]] = {}
    for other in active:
        if other.service == incident.service and other.id != incident.id:
            symptoms.setdefault(other.host, []).append(other.symptom)
    try:
        hosts = config.inventory.hosts_of(config.inventory.service(incident.service))
    except KeyError:  # a host-level incident, or a service no longer in the config
        hosts = []
    peers = tuple(
        Peer(h.name, tuple(sorted(symptoms.get(h.name, ()))))
        for h in hosts
        if h.name != incident.host
    )
    kept = [_line(item) for item in lines][-MAX_LINES:]
    own = [i for i in seen.values() if i.target == incident.target]
    earlier = [
        c
        for c in changes
        if onset - before_s <= c.at <= onset and not any(_healed_after(i, c.at, onset) for i in own)
    ]
    return Evidence(
        incident,
        tuple(related),
        peers,
        tuple(kept),
        tuple(sorted(earlier, key=lambda c: c.at)),
        before_s,
        after_s,
    )
