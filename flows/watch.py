"""Watch the fleet once: collect (probes, metrics, logs) -> detect -> correlate -> notify ->
remediate.

Scheduled on an interval (deployments/prefect.yaml, or `lazarus serve`); each run is one cycle.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

from prefect import flow
from prefect.utilities.annotations import quote

from flows.recover import recover
from lazarus.incidents import remediable
from lazarus.shard import shard_config
from tasks.collect import probe_services, query_sources
from tasks.detect import correlate, detect
from tasks.events import emit_all, publish_summary
from tasks.logs import collect_logs, log_anomalies
from tasks.notify import dispatch, settle
from tasks.remediate import playbooks_for_watch
from tasks.runtime import flow_run_url, load
from tasks.switch import auto_remediation

PARALLEL_RECOVERIES = 8


def recover_all(incident_ids: list[int], config_path: str) -> list[str]:
    """Recover runs side by side, as workers would run them; the fleet cap bounds the overlap.

    Each thread gets a copy of this run's context, so each recover run is a child of it.
    """
    if not incident_ids:
        return []
    with ThreadPoolExecutor(min(PARALLEL_RECOVERIES, len(incident_ids))) as pool:
        futures = [
            pool.submit(copy_context().run, recover, i, config_path, actor="automation")
            for i in incident_ids
        ]
        return [f.result() for f in futures]


@flow(name="watch", log_prints=True)
def watch(
    config_path: str = "lazarus.yaml", shard: int = 0, shards: int = 1, remediate: bool = True
) -> dict[str, int]:
    """One cycle over the fleet (or shard ``shard`` of ``shards``); returns counts for the run.

    ``remediate`` false: new incidents are left to the automation ``lazarus deploy`` creates.
    """
    config = shard_config(load(config_path), shard, shards)
    # quoted: Prefect would otherwise walk the whole fleet's config before every task starts
    fleet = quote(config)
    observations = probe_services(fleet)
    samples = query_sources(fleet)
    logs = collect_logs(fleet)
    anomalies = detect(fleet, observations, samples) + log_anomalies(fleet, logs)
    found = correlate(fleet, anomalies, observations)
    url = flow_run_url(config)
    deliveries = dispatch(config, flow_run_url=url)  # grouped, muted, escalated: tasks.notify
    emit_all(found.opened, "opened")
    emit_all(found.closed, "resolved")
    books = playbooks_for_watch(config) if remediate and auto_remediation() else {}
    outcomes = recover_all(
        [i.id for i in found.opened if remediable(config, books, i)], config_path
    )
    failed_deliveries = settle(deliveries)
    counts = {
        "instances": len(observations),
        "failing": sum(not o.ok for o in observations),
        "anomalies": len(anomalies),
        "opened": len(found.opened),
        "closed": len(found.closed),
        "resolved": outcomes.count("resolved"),
        "escalated": outcomes.count("escalated"),
        "undelivered": failed_deliveries,
    }
    publish_summary(counts, anomalies, shard=shard, shards=shards)
    return counts
