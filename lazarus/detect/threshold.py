"""The foundation's detectors: a probe that keeps failing, a series past a threshold.

Both fire only after ``for`` consecutive bad cycles, so one lost packet pages nobody. The
count of bad cycles per key is state the caller keeps between watch runs (the store does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lazarus.config import ThresholdRule
from lazarus.model import Anomaly, Observation, Sample


def advance(streaks: Mapping[str, int], bad: Mapping[str, bool]) -> dict[str, int]:
    """Next streak counts of the keys seen this cycle: +1 when bad, 0 (ended) when good.

    Keys not seen (another shard's targets) are not in the result, so their streaks go on."""
    return {key: streaks.get(key, 0) + 1 if is_bad else 0 for key, is_bad in bad.items()}


PROBE_SYMPTOMS = frozenset({"service_down", "service_unhealthy"})


NOTHING_ANSWERS = ("refused", "unreachable", "down")


def probe_symptom(observation: Observation) -> str:
    """``service_down`` when nothing answers (refused, no route or no answer to connect, a
    command probe's non-zero exit), ``service_unhealthy`` when it answers wrongly or hangs."""
    return "service_down" if observation.detail.startswith(NOTHING_ANSWERS) else "service_unhealthy"


def detect_probes(
    observations: Iterable[Observation], streaks: Mapping[str, int], failures: int
) -> tuple[list[Anomaly], dict[str, int]]:
    """Anomalies for instances whose probe failed ``failures`` cycles in a row; new streaks.

    Every anomaly of one cycle carries the cycle's first probe time: probes that fail together
    are simultaneous, so diagnosis never reads a sub-millisecond gap as "began after"."""
    observations = list(observations)
    keys = {f"probe:{o.target}": o for o in observations}
    new = advance(streaks, {key: not o.ok for key, o in keys.items()})
    cycle_at = min((o.at for o in observations), default=0.0)
    anomalies = [
        Anomaly(
            host=o.host,
            service=o.service,
            symptom=probe_symptom(o),
            severity="critical",
            summary=f"health probe failed {new[key]} times in a row: {o.detail}",
            at=cycle_at,
        )
        for key, o in keys.items()
        if new.get(key, 0) >= failures
    ]
    return anomalies, new


def detect_thresholds(
    samples: Iterable[Sample], rules: Iterable[ThresholdRule], streaks: Mapping[str, int]
) -> tuple[list[Anomaly], dict[str, int]]:
    """Anomalies for series past a rule's bound for the rule's ``for`` cycles; new streaks."""
    rules = list(rules)
    bad: dict[str, bool] = {}
    fired: dict[str, tuple[ThresholdRule, Sample]] = {}
    for sample in samples:
        for rule in rules:
            if rule.series != sample.series:
                continue
            key = f"rule:{rule.series}:{sorted(sample.labels)}"
            breached = (rule.above is not None and sample.value > rule.above) or (
                rule.below is not None and sample.value < rule.below
            )
            bad[key] = breached
            fired[key] = (rule, sample)
    new = advance(streaks, bad)
    anomalies = []
    for key, count in new.items():
        rule, sample = fired[key]
        if count < rule.for_:
            continue
        bound = (
            f"> {rule.above}"
            if rule.above is not None and sample.value > rule.above
            else (f"< {rule.below}")
        )
        anomalies.append(
            Anomaly(
                host=sample.label("host") or sample.label("instance"),
                service=sample.label("service"),
                symptom=rule.symptom or f"{rule.series}_out_of_bounds",
                severity=rule.severity,
                summary=f"{rule.series} = {sample.value:g} {bound} for {count} cycles",
                at=sample.at,
                labels={k: v for k, v in sample.labels},
            )
        )
    return anomalies, new
