"""Remediate: restart over SSH (retrying only what may pass), then verify with the probe."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus import recover as core
from lazarus.config import Config
from lazarus.model import CommandResult, Incident, Observation
from lazarus.remote import Executor
from tasks.policies import backoff, only_transient


@task(
    name="restart-service",
    cache_policy=NO_CACHE,
    retry_jitter_factor=0.2,
    retry_condition_fn=only_transient,
)
def restart_service(executor: Executor, config: Config, incident: Incident) -> CommandResult:
    get_run_logger().info("restart %s", core.describe_restart(config, incident))
    return core.restart(executor, config, incident)


@task(name="verify-recovery", cache_policy=NO_CACHE)
def verify_recovery(config: Config, incident: Incident) -> Observation:
    """The symptom that opened the incident must be gone: the probe passes within the limit."""
    return core.verify(
        core.probe_target(config, incident),
        within=config.recovery.verify_within,
        interval=config.recovery.verify_interval,
    )


def restart_with_retries(executor: Executor, config: Config, incident: Incident):
    """The restart task configured from the config's retry policy; returns its final State."""
    ssh = config.inventory.ssh
    task_ = restart_service.with_options(
        retries=config.recovery.retries,
        retry_delay_seconds=backoff(config.recovery.retry_delay, config.recovery.retries),
        timeout_seconds=ssh.connect_timeout + ssh.command_timeout + 10,
    )
    return task_(executor, config, incident, return_state=True)
