"""Collect: probe every watched instance, dial the hosts that answer no probe, and read every
metrics source, once per cycle."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config, PrometheusSource, SshMetricsSource
from lazarus.detect.hosts import answering, suspects, unreachable
from lazarus.detect.sources import SourceRead, prometheus_read, ssh_metrics_reads
from lazarus.errors import LazarusError
from lazarus.model import Observation, Sample
from lazarus.remote.pool import shared_executor
from lazarus.sources import clock, prometheus, ssh_metrics
from lazarus.sources.probes import check_all, instances


@task(name="probe-services", cache_policy=NO_CACHE)
def probe_services(config: Config) -> list[Observation]:
    """One probe per watched instance (services on their hosts, databases on theirs), all at
    once; command probes share the process's warm SSH connections."""
    executor = shared_executor(config.inventory.ssh, config.base_dir)
    observations = check_all(instances(config.inventory), executor=executor)
    silent = [h.name for h in suspects(observations, config.inventory.hosts)]
    executor.backoff.probed(answering(observations), silent)  # a host back is dialled at once
    failing = [f"{o.target}: {o.detail}" for o in observations if not o.ok]
    get_run_logger().info(
        "probed %d instances, %d failing%s",
        len(observations),
        len(failing),
        (": " + "; ".join(failing)) if failing else "",
    )
    return observations


@dataclass(frozen=True)
class Collected:
    """One cycle's samples, and how each source's read went (``source_down`` counts them)."""

    samples: list[Sample]
    reads: list[SourceRead]


@task(name="query-sources", cache_policy=NO_CACHE)
def query_sources(config: Config) -> Collected:
    """Samples from every configured source; a source that fails is logged and counted, not
    fatal (lazarus.detect.sources)."""
    logger = get_run_logger()
    samples: list[Sample] = []
    reads: list[SourceRead] = []
    for source in config.sources:
        try:
            if isinstance(source, PrometheusSource):
                samples += _query(source)
                reads.append(prometheus_read(source))
            else:
                found, per_host = _ssh_metrics(config, source)
                samples += found
                reads += per_host
        except LazarusError as exc:
            logger.warning("source %s failed this cycle: %s", source.kind, exc)
            if isinstance(source, PrometheusSource):
                reads.append(prometheus_read(source, str(exc)))
    if config.detectors.clock.enabled:  # offset and round trip per host, as series
        try:
            samples += clock.read_clocks(config)
        except LazarusError as exc:
            logger.warning("clock probe failed this cycle: %s", exc)
    return Collected(samples, reads)


def _query(source: PrometheusSource) -> list[Sample]:
    return [
        sample
        for name, promql in source.queries.items()
        for sample in prometheus.query(source.url, promql, series=name, timeout=source.timeout)
    ]


def _ssh_metrics(config: Config, source: SshMetricsSource) -> tuple[list[Sample], list[SourceRead]]:
    hosts = [
        h
        for h in config.inventory.hosts
        if all(h.labels.get(k) == v for k, v in source.hosts.items())
    ]
    executor = shared_executor(config.inventory.ssh, config.base_dir)
    found = ssh_metrics.collect_all(executor, hosts, timeout=source.timeout)
    if found.failed:
        get_run_logger().warning(
            "ssh_metrics: %d of %d hosts not read this cycle: %s",
            len(found.failed),
            len(hosts),
            "; ".join(f"{h}: {why}" for h, why in sorted(found.failed.items())),
        )
    return found.samples, ssh_metrics_reads([h.name for h in hosts], found)


@task(name="reach-hosts", cache_policy=NO_CACHE)
def reach_hosts(config: Config, observations: list[Observation]) -> dict[str, str]:
    """Hosts whose every probe failed, dialled over SSH: those that do not answer, with why.

    Back-off keeps a dead host from being dialled every cycle; while it waits it counts as
    still unreachable."""
    executor = shared_executor(config.inventory.ssh, config.base_dir)
    candidates = suspects(observations, config.inventory.hosts)
    down = unreachable(executor, candidates, timeout=config.inventory.ssh.connect_timeout)
    for name, why in sorted(down.items()):
        get_run_logger().warning("host %s does not answer SSH: %s", name, why)
    return down
