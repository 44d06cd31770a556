"""Notify: route an incident's message to its receivers, each delivery retried on its own.

Deliveries are submitted, not awaited, so a dead receiver retrying with backoff never holds
up remediation; ``settle`` collects the outcomes at the end of the flow.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait

from lazarus.config import Config
from lazarus.errors import DeliveryError
from lazarus.model import Incident
from lazarus.notify.deliver import deliver
from lazarus.notify.message import Message, render
from lazarus.notify.route import receivers_for
from tasks.policies import backoff
from tasks.runtime import open_store


@task(name="deliver", cache_policy=NO_CACHE, retry_jitter_factor=0.2)
def deliver_message(
    config: Config, incident_id: int, event: str, receiver: str, message: Message
) -> None:
    """One receiver, one attempt; every attempt is recorded, a failure raises to be retried."""
    urls = next(r.urls for r in config.notify.receivers if r.name == receiver)
    outcome = deliver(receiver, urls, message.title, message.body, timeout=config.notify.timeout)
    store = open_store(config)
    try:
        store.record_delivery(incident_id, event, receiver, outcome.ok, outcome.error)
        if outcome.ok:
            store.mark_notified(incident_id)
    finally:
        store.close()
    if not outcome.ok:
        raise DeliveryError(receiver, outcome.error)


def receivers(config: Config, incident: Incident) -> list[str]:
    """Receivers the routing tree picks for an incident (all receivers when no route is set)."""
    if config.notify.route is None:
        return [r.name for r in config.notify.receivers]
    return receivers_for(config.notify.route, incident.facts())


def notify(
    config: Config,
    incident: Incident,
    event: str,
    *,
    flow_run_url: str = "",
    actions: Sequence[str] = (),
) -> list[PrefectFuture[None]]:
    """Submit one delivery per routed receiver; returns the futures for ``settle``."""
    message = render(incident, event, flow_run_url=flow_run_url, actions=actions)
    send = deliver_message.with_options(
        retries=config.notify.retries,
        retry_delay_seconds=backoff(config.notify.retry_delay, config.notify.retries),
    )
    return [
        send.submit(config, incident.id, event, name, message)
        for name in receivers(config, incident)
    ]


def settle(futures: Sequence[PrefectFuture[None]]) -> int:
    """Wait for deliveries; log each that failed for good. Returns how many failed."""
    done = wait(list(futures)).done
    failed = [f for f in done if f.state.is_failed()]
    for future in failed:
        get_run_logger().error("notification not delivered: %s", future.state.message)
    return len(failed)
