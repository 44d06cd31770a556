"""Notify: group, mute and escalate alerts in the store, then deliver each message as a task.

``dispatch`` (the watch flow) files every active incident as a firing alert and claims what is
due: grouped messages, escalation pages, silence reminders (a recovery's end goes with its
group's next message: the recover flow keeps its outcome first). ``notify`` sends one
incident's news that waits for no group at once (a person's ack, a plan waiting for approval,
a playbook's report). Deliveries are submitted, not awaited, so a dead receiver retrying with
backoff never holds up remediation; ``settle`` collects the outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait
from prefect.runtime import task_run
from prefect.settings import PREFECT_UI_URL
from prefect.utilities.annotations import quote

from lazarus.config import Config
from lazarus.errors import DeliveryError
from lazarus.model import Incident
from lazarus.notify import dispatch as grouping
from lazarus.notify.announce import incident_notifications
from lazarus.notify.escalation import AckInput, acknowledge
from lazarus.notify.links import Reach
from lazarus.notify.message import render
from lazarus.notify.send import attempt
from lazarus.notify.state import Alert, Notification, NotifyState
from lazarus.oncall_web import signer_for, silence_for
from tasks.oncall import BOARD
from tasks.policies import backoff
from tasks.runtime import open_store


@task(name="deliver", cache_policy=NO_CACHE, retry_jitter_factor=0.2)
def deliver_message(config: Config, notification: Notification) -> None:
    """One try; a failure raises to be retried, the last try falls back (lazarus.notify.send)."""
    final = task_run.run_count > config.notify.retries
    store = open_store(config)
    try:
        outcome = attempt(NotifyState(store), config.notify, notification, time.time(), final=final)
    finally:
        store.close()
    if not outcome.ok:
        raise DeliveryError(outcome.receiver, outcome.error)


def _submit(config: Config, notifications: Sequence[Notification]) -> list[PrefectFuture[None]]:
    send = deliver_message.with_options(
        retries=config.notify.retries,
        retry_delay_seconds=backoff(config.notify.retry_delay, config.notify.retries),
    )
    return [send.submit(quote(config), n) for n in notifications]  # see flows/watch.py


def dispatch(config: Config, *, now: float | None = None) -> list[PrefectFuture[None]]:
    """File every active incident as a firing alert (the rest resolve) and send what is due.

    The watch calls it every cycle; a recover run calls it when it ends, so its outcome goes
    out with its group as soon as the group may speak (lazarus.notify.outcomes)."""
    now = time.time() if now is None else now
    store = open_store(config)
    try:
        state = NotifyState(store)
        alerts = [Alert.of(i) for i in store.active()]
        grouping.record(state, config.notify, alerts, now, complete=True)
        due = grouping.flush(state, config.notify, now, reach_for(config))
    finally:
        store.close()
    return _submit(config, due)


def reach_for(config: Config) -> Reach:
    """What messages offer to act with: the config's path for shell lines, the board in the
    Prefect UI, and signed links when `lazarus serve` answers them (``server.links``)."""
    ui = config.prefect.ui_url or PREFECT_UI_URL.value() or ""
    board = f"{ui.rstrip('/')}/artifacts/key/{BOARD}" if ui else ""
    return Reach(str(config.file or ""), board, signer_for(config), silence_for(config))


def acknowledge_incident(config: Config, incident_id: int, ack: AckInput) -> bool:
    """Record an acknowledgement (from a flow's input form): stops escalation and repeats."""
    store = open_store(config)
    try:
        return acknowledge(NotifyState(store), incident_id, ack, time.time()) is not None
    finally:
        store.close()


def notify(
    config: Config,
    incident: Incident,
    event: str,
    *,
    flow_run_url: str = "",
    actions: Sequence[str] = (),
    diagnosis: str = "",
) -> list[PrefectFuture[None]]:
    """One message about one incident to each routed receiver, now (remediation outcomes)."""
    message = render(
        incident, event, flow_run_url=flow_run_url, actions=actions, diagnosis=diagnosis,
        reach=reach_for(config), now=time.time(),
    )  # fmt: skip
    return _submit(config, incident_notifications(config.notify, incident, event, message))


def settle(futures: Sequence[PrefectFuture[None]]) -> int:
    """Wait for deliveries; log each that failed for good. Returns how many failed."""
    done = wait(list(futures)).done
    failed = [f for f in done if f.state.is_failed()]
    for future in failed:
        get_run_logger().error("notification not delivered: %s", future.state.message)
    return len(failed)
