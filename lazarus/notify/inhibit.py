"""Inhibition, as Alertmanager does it: a firing source alert mutes the target alerts that
carry the same values of the ``equal`` labels (a host that is down mutes its services).

An alert that matches both sides never mutes itself. Linear in the number of alerts: sources
are indexed by their ``equal`` values, so a storm costs one pass per rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from lazarus.config import InhibitRule
from lazarus.notify.route import matches_all
from lazarus.notify.state import Alert


def inhibited(firing: Sequence[Alert], rules: Sequence[InhibitRule]) -> dict[str, str]:
    """Fingerprint -> why, for every firing alert some other firing alert inhibits."""
    muted: dict[str, str] = {}
    for rule in rules:
        sources: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for alert in firing:
            if matches_all(rule.source_matchers, alert.labels):
                sources[_key(rule, alert.labels)].add(alert.fingerprint)
        if not sources:
            continue
        for alert in firing:
            if alert.fingerprint in muted or not matches_all(rule.target_matchers, alert.labels):
                continue
            by = sources.get(_key(rule, alert.labels), set()) - {alert.fingerprint}
            if by:
                muted[alert.fingerprint] = f"inhibited by {min(by)}"
    return muted


def _key(rule: InhibitRule, labels: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in rule.equal)
