"""The symptom catalogue: for every symptom, which detector raises it and which labels it
always sets.

It is the contract between detection and playbooks: a playbook template may only name
``incident.labels.X`` when every symptom its trigger admits promises ``X`` (``labels_missing``),
so a template that cannot be filled fails ``lazarus playbook check`` instead of a 3 a.m. run.

Adding a symptom is one call, next to the others below::

    register("db_down", raised_by="postgres probe (sources/probes.py)", labels=("database",))

A name with ``*`` is a pattern for symptoms named after a series (``disk_used_ratio_anomaly``).
Labels a symptom *may* set are not listed: only what a playbook can rely on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from lazarus.notify.route import Matcher, parse_matchers


@dataclass(frozen=True)
class Symptom:
    name: str
    raised_by: str
    labels: frozenset[str]


CATALOGUE: dict[str, Symptom] = {}
_FACTS = frozenset({"symptom", "cause", "host", "service", "severity"})  # not labels


def register(name: str, *, raised_by: str, labels: Iterable[str] = ()) -> Symptom:
    """Declare symptom ``name`` (or a ``*`` pattern): who raises it, the labels it always sets."""
    if name in CATALOGUE:
        raise ValueError(f"symptom {name!r} is registered twice")
    CATALOGUE[name] = Symptom(name, raised_by, frozenset(labels))
    return CATALOGUE[name]


def lookup(name: str) -> Symptom | None:
    """The entry of ``name``: its own, else the first pattern it fits; None when unknown."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    return next((s for k, s in CATALOGUE.items() if "*" in k and fnmatchcase(name, k)), None)


def promised(name: str) -> frozenset[str]:
    """The labels an incident of symptom ``name`` always carries (none when unknown)."""
    entry = lookup(name)
    return entry.labels if entry else frozenset()


def missing(symptom: str, labels: Iterable[str]) -> list[str]:
    """Labels the catalogue promises for ``symptom`` that ``labels`` lacks: a detector's bug."""
    return sorted(promised(symptom) - set(labels))


def guaranteed(matchers: Iterable[str]) -> frozenset[str]:
    """Labels every incident that the trigger ``matchers`` can match is sure to carry.

    The symptoms the matchers admit each promise their labels (the intersection counts); a
    matcher that needs a label non-empty (``releases=~".+"``) promises that label too.
    """
    parsed = [m for text in matchers for m in parse_matchers(text)]
    on_symptom = [m for m in parsed if m.name == "symptom"]
    sure: set[str] = set()
    if on_symptom:
        names = _admitted(on_symptom)
        sure = set.intersection(*(set(promised(n)) for n in names)) if names else set()
    sure.update(m.name for m in parsed if m.name not in _FACTS and not m.matches({}))
    return frozenset(sure)


def _admitted(matchers: list[Matcher]) -> list[str]:
    """The symptom names the matchers let through: exact values named, else catalogue names."""
    exact = [m.value for m in matchers if m.op == "="]
    names = exact or [n for n in CATALOGUE if "*" not in n]
    return [n for n in names if all(m.matches({"symptom": n}) for m in matchers)] or exact


def labels_named(names: Iterable[str]) -> list[str]:
    """``X`` of every template name ``incident.labels.X`` in ``names``."""
    return [
        n.split(".")[2] for n in names if n.startswith("incident.labels.") and n.count(".") >= 2
    ]


# --- the catalogue ----------------------------------------------------------------------------
# Probes (lazarus/detect/threshold.py): the incident's host and service are its fields.
register(
    "service_down",
    raised_by="probe (sources/probes.py): nothing answers (refused, no route, no answer to a"
    " connect, a command probe's non-zero exit)",
)
register("service_unhealthy", raised_by="health probe: a wrong status, an error or a timeout")
register(
    "host_down",
    raised_by="host check (detect/hosts.py): SSH and every probe of the host fail",
    labels=["host", "address"],
)
register(
    "disk_full",
    raised_by="threshold rule {series: disk_used_ratio, above: 0.9, symptom: disk_full} on "
    "the ssh_metrics source",
    labels=["host", "mount"],
)
register(
    "bad_release",
    raised_by="diagnosis, as a cause: a service broke soon after its release changed",
)
# Databases (lazarus/dbwatch.py).
register(
    "db_corrupt",
    raised_by="database check: a configured check breaks its bound (dbwatch.py)",
    labels=["database", "check", "value", "bound", "bad_at"],
)
register(
    "db_stuck_transaction",
    raised_by="sessions idle in a transaction or blocking past the limits (dbwatch.py)",
    labels=["database", "pids", "sessions"],
)
register(
    "source_down",
    raised_by="a source (a Prometheus server, one host's SSH metrics or logs) failed"
    " detectors.source_failures cycles in a row (detect/sources.py); resolved when it answers",
    labels=["source", "error"],
)
register("clock_skew", raised_by="clock detector (detect/skew.py)", labels=["host"])
# Logs (lazarus/logcollect/).
register("log_new_error", raised_by="an error template never seen before", labels=["template_id"])
register(
    "log_error_spike",
    raised_by="an error template's rate jumps (logcollect/rates.py)",
    labels=["template_id", "rate_per_min", "baseline_per_min", "series"],
)
# Rules and statistical detectors, named after their series (lazarus/detect/).
register("*_out_of_bounds", raised_by="a threshold rule without symptom:")
for _kind in ("anomaly", "peer_outlier", "absent", "change_point", "rate_of_change", "mad", "esd"):
    register(f"*_{_kind}", raised_by=f"detect/cycle.py: {_kind}", labels=["series"])
