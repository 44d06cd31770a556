"""Watch the fleet once: collect -> detect -> correlate -> notify -> remediate.

Scheduled on an interval (deployments/prefect.yaml, or `lazarus serve`); each run is one cycle.
"""

from __future__ import annotations

from prefect import flow

from flows.recover import recover
from lazarus.incidents import remediable
from tasks.collect import probe_services, query_sources
from tasks.detect import correlate, detect
from tasks.notify import notify, settle
from tasks.runtime import flow_run_url, load


@flow(name="watch", log_prints=True)
def watch(config_path: str = "lazarus.yaml") -> dict[str, int]:
    """One cycle over the whole fleet; returns counts for the run's result."""
    config = load(config_path)
    observations = probe_services(config)
    samples = query_sources(config)
    anomalies = detect(config, observations, samples)
    found = correlate(config, anomalies, observations)
    url = flow_run_url(config)
    deliveries = [
        future
        for incident in found.opened
        for future in notify(
            config,
            incident,
            "opened",
            flow_run_url=url,
            actions=["automatic restart"] if remediable(config, incident) else [],
        )
    ]
    deliveries += [f for i in found.closed for f in notify(config, i, "resolved", flow_run_url=url)]
    outcomes = [recover(i.id, config_path) for i in found.opened if remediable(config, i)]
    failed_deliveries = settle(deliveries)
    return {
        "instances": len(observations),
        "failing": sum(not o.ok for o in observations),
        "anomalies": len(anomalies),
        "opened": len(found.opened),
        "closed": len(found.closed),
        "resolved": outcomes.count("resolved"),
        "escalated": outcomes.count("escalated"),
        "undelivered": failed_deliveries,
    }
