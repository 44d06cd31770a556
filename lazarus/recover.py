"""Restart a service instance over SSH and prove it healthy again.

The Prefect layer wraps these in tasks with retries; here they are plain functions that raise
the error tree, so what may be retried (TransientError) is decided by type, not by text.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from lazarus.config import Config, Host, Service
from lazarus.errors import VerifyFailed
from lazarus.model import CommandResult, Incident, Observation
from lazarus.remote import Executor
from lazarus.remote.control import check_control_result, control_argv
from lazarus.sources.http import ProbeTarget, probe, probe_targets


def instance(config: Config, incident: Incident) -> tuple[Service, Host]:
    """The service and host an incident is about (KeyError names what the config lacks)."""
    return config.inventory.service(incident.service), config.inventory.host(incident.host)


def restart_argv(config: Config, incident: Incident) -> list[str]:
    """The exact command a restart runs on the incident's host."""
    service, host = instance(config, incident)
    return control_argv(service.control, "restart", service, host)


def describe_restart(config: Config, incident: Incident) -> str:
    """What a restart would do, for dry runs and the audit: host and shell-quoted command."""
    _, host = instance(config, incident)
    return f"on {host.name} ({host.address}): {shlex.join(restart_argv(config, incident))}"


def restart(executor: Executor, config: Config, incident: Incident) -> CommandResult:
    """Run the service manager's restart; raise UnitNotFound/CommandRejected when it refuses."""
    service, host = instance(config, incident)
    result = executor.run(
        host, restart_argv(config, incident), timeout=config.inventory.ssh.command_timeout
    )
    check_control_result(result, service.name)
    return result


def probe_target(config: Config, incident: Incident) -> ProbeTarget:
    for target in probe_targets(config.inventory):
        if (target.host, target.service) == (incident.host, incident.service):
            return target
    raise KeyError(f"no probe for {incident.target}")


def verify(
    target: ProbeTarget,
    *,
    within: float,
    interval: float,
    check: Callable[[ProbeTarget], Observation] = probe,
) -> Observation:
    """Probe until healthy or ``within`` seconds pass; VerifyFailed says what the probe last saw."""
    deadline = time.monotonic() + within
    while True:
        observation = check(target)
        if observation.ok:
            return observation
        if time.monotonic() + interval > deadline:
            raise VerifyFailed(
                f"{target.service}@{target.host} still unhealthy {within:g}s after recovery:"
                f" {observation.detail}"
            )
        time.sleep(interval)
