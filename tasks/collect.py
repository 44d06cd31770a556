"""Collect: probe every service instance and read every metrics source, once per cycle."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config, PrometheusSource, SshMetricsSource
from lazarus.errors import LazarusError
from lazarus.model import Observation, Sample
from lazarus.remote.ssh import SshExecutor
from lazarus.sources import clock, prometheus, ssh_metrics
from lazarus.sources.http import probe_all, probe_targets


@task(name="probe-services", cache_policy=NO_CACHE)
def probe_services(config: Config) -> list[Observation]:
    """One HTTP health probe per service instance, all at once."""
    observations = probe_all(probe_targets(config.inventory))
    failing = [f"{o.target}: {o.detail}" for o in observations if not o.ok]
    get_run_logger().info(
        "probed %d instances, %d failing%s",
        len(observations),
        len(failing),
        (": " + "; ".join(failing)) if failing else "",
    )
    return observations


@task(name="query-sources", cache_policy=NO_CACHE)
def query_sources(config: Config) -> list[Sample]:
    """Samples from every configured source; a source that fails is logged, not fatal."""
    logger = get_run_logger()
    samples: list[Sample] = []
    for source in config.sources:
        try:
            samples += _read(config, source)
        except LazarusError as exc:
            logger.warning("source %s failed this cycle: %s", source.kind, exc)
    if config.detectors.clock.enabled:  # offset and round trip per host, as series
        try:
            samples += clock.read_clocks(config)
        except LazarusError as exc:
            logger.warning("clock probe failed this cycle: %s", exc)
    return samples


def _read(config: Config, source: PrometheusSource | SshMetricsSource) -> list[Sample]:
    if isinstance(source, PrometheusSource):
        return [
            sample
            for name, promql in source.queries.items()
            for sample in prometheus.query(source.url, promql, series=name, timeout=source.timeout)
        ]
    hosts = [
        h
        for h in config.inventory.hosts
        if all(h.labels.get(k) == v for k, v in source.hosts.items())
    ]
    with SshExecutor(config.inventory.ssh, config.base_dir) as executor:
        return [s for host in hosts for s in ssh_metrics.collect(executor, host)]
