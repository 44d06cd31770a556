"""Host-level detection: a host is down when SSH and every probe of it fail in one cycle.

One ``host_down`` incident per host, apart from its services' symptoms, so an inhibit rule
(``source_matchers: ['symptom="host_down"']``, ``equal: [host]``) mutes the pages of the
services on it. Only hosts whose probes all fail are dialled (over the warm, backed-off
executor), so a healthy fleet costs nothing here. It fires after ``failures`` such cycles in a
row, like service probes, so the two open in the same cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from lazarus.config import Host
from lazarus.detect.threshold import advance
from lazarus.errors import RemoteError
from lazarus.model import Anomaly, Observation
from lazarus.remote import Executor

HOST_DOWN = "host_down"
REACH_COMMAND = ["true"]


def suspects(observations: Iterable[Observation], hosts: Sequence[Host]) -> list[Host]:
    """Hosts with at least one probe this cycle, every one of them failing."""
    seen: dict[str, list[bool]] = {}
    for o in observations:
        seen.setdefault(o.host, []).append(o.ok)
    return [h for h in hosts if seen.get(h.name) and not any(seen[h.name])]


def unreachable(
    executor: Executor, hosts: Sequence[Host], *, timeout: float, workers: int = 32
) -> dict[str, str]:
    """Of ``hosts``, those SSH cannot run a command on now, with why (in parallel)."""

    def dial(host: Host) -> str:
        try:
            executor.run(host, REACH_COMMAND, timeout=timeout)
        except RemoteError as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(hosts))) as pool:
        found = list(pool.map(dial, hosts))
    return {h.name: why for h, why in zip(hosts, found, strict=True) if why}


def detect_hosts(
    observations: Sequence[Observation],
    hosts: Sequence[Host],
    down: Mapping[str, str],
    streaks: Mapping[str, int],
    failures: int,
) -> tuple[list[Anomaly], dict[str, int]]:
    """``host_down`` for each host down ``failures`` cycles in a row; the new streaks.

    ``down`` maps the hosts SSH could not reach this cycle (of the suspects) to why."""
    failing = {h.name for h in suspects(observations, hosts)}
    probed = {o.host for o in observations}
    bad = {
        f"host:{h.name}": h.name in failing and h.name in down
        for h in hosts
        if h.name in probed or h.name in down
    }
    new = advance(streaks, bad)
    at = min((o.at for o in observations), default=0.0)
    anomalies = []
    for host in hosts:
        count = new.get(f"host:{host.name}", 0)
        if count < failures:
            continue
        probes = sum(o.host == host.name for o in observations)
        anomalies.append(
            Anomaly(
                host=host.name,
                service="",
                symptom=HOST_DOWN,
                severity="critical",
                summary=f"host unreachable {count} cycles in a row: SSH ({down[host.name]})"
                f" and all {probes} probe(s) fail",
                at=at,
                labels={"host": host.name, "address": host.address},
            )
        )
    return anomalies, new


def unexplained(anomalies: Iterable[Anomaly], down: Mapping[str, str]) -> list[Anomaly]:
    """The series anomalies that are news: a host nobody can reach sends no metrics, and its
    series going absent (or odd from half a reading) is its ``host_down``, said once."""
    return [a for a in anomalies if a.host not in down]


def answering(observations: Iterable[Observation]) -> set[str]:
    """Hosts that answered at least one probe this cycle: up, whatever else fails on them."""
    return {o.host for o in observations if o.ok}
