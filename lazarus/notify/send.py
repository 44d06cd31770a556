"""Deliver a claimed notification: per-receiver rate limit, a fallback receiver, and a record.

``attempt`` makes one try; the Prefect task retries it with backoff and passes ``final`` on its
last try, when a failure goes to the fallback receiver instead (and so does a message the
receiver's rate limit refuses, at once). A message counts as sent only once delivered: a
flush puts what it claims in the outbox, and a delivery takes it out; one that the fallback did
not take either is due again at the next flush, and one whose sender died with it once its
lease ends. Every try lands in ``notify_sends`` with its reason, and in the store's
per-incident delivery record, so ``lazarus incidents --show`` tells the story.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from lazarus.config import Notify
from lazarus.errors import DeliveryError
from lazarus.notify.deliver import Delivery, deliver
from lazarus.notify.state import Notification, NotifyState, delivered, keep_undelivered

Deliver = Callable[..., Delivery]
RATE_LIMITED = "rate limited"


def attempt(
    state: NotifyState,
    notify: Notify,
    notification: Notification,
    now: float,
    *,
    final: bool = True,
    send: Deliver = deliver,
) -> Delivery:
    """One try to the notification's receiver, then to the fallback if this was the last try."""
    outcome = _try(state, notify, notification, notification.receiver, now, send)
    limited = outcome.error.startswith(RATE_LIMITED)
    fallback = notify.fallback
    if outcome.ok:
        delivered(state, notification)
    if outcome.ok or not (final or limited):
        return outcome  # sent, or the task tries again (it stays in the outbox meanwhile)
    if fallback and fallback != notification.receiver:
        note = f"\n\n_(fallback for {notification.receiver}: {outcome.error})_"
        moved = replace(notification, receiver=fallback, body=notification.body + note)
        outcome = _try(state, notify, moved, fallback, now, send)
    if not outcome.ok and final and not outcome.error.startswith(RATE_LIMITED):
        keep_undelivered(state, notification, now)
    elif outcome.ok or final:
        delivered(state, notification)  # by the fallback, or held back by a rate limit
    return outcome


def deliver_with_retries(
    state: NotifyState,
    notify: Notify,
    notification: Notification,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    send: Deliver = deliver,
) -> Delivery:
    """``attempt`` with the config's retries and exponential backoff, outside Prefect."""
    for tries in range(notify.retries + 1):
        final = tries == notify.retries
        outcome = attempt(state, notify, notification, clock(), final=final, send=send)
        if outcome.ok or final or outcome.error.startswith(RATE_LIMITED):
            return outcome
        sleep(notify.retry_delay * 2**tries)
    raise AssertionError("unreachable: the last try returns")


def _try(
    state: NotifyState, notify: Notify, n: Notification, receiver: str, now: float, send: Deliver
) -> Delivery:
    config = next((r for r in notify.receivers if r.name == receiver), None)
    if config is None:
        raise DeliveryError(receiver, "is not defined in notify.receivers")
    alerts = len(n.firing) + len(n.resolved)
    with state.tx() as db:
        if config.rate_limit is not None:
            used = db.execute(
                "SELECT COUNT(*) FROM notify_sends WHERE receiver = ? AND at > ?"
                " AND (ok IS NULL OR ok = 1)",
                (receiver, now - config.rate_limit.per),
            ).fetchone()[0]
            if used >= config.rate_limit.max:
                error = f"{RATE_LIMITED}: {config.rate_limit.max} per {config.rate_limit.per:g}s"
                db.execute(
                    "INSERT INTO notify_sends (key, kind, receiver, alerts, ok, error, at)"
                    " VALUES (?, ?, ?, ?, 0, ?, ?)",
                    (n.key, n.kind, receiver, alerts, error, now),
                )
                return Delivery(receiver, False, (), error)
        slot = db.execute(
            "INSERT INTO notify_sends (key, kind, receiver, alerts, at) VALUES (?, ?, ?, ?, ?)",
            (n.key, n.kind, receiver, alerts, now),
        ).lastrowid
    try:
        outcome = send(
            receiver, config.urls, n.title, n.body, timeout=notify.timeout,
            short_body=n.sms or None,
        )  # fmt: skip
    except DeliveryError as exc:
        outcome = Delivery(receiver, False, (), str(exc))
    with state.tx() as db:
        db.execute(
            "UPDATE notify_sends SET ok = ?, error = ? WHERE id = ?",
            (int(outcome.ok), outcome.error, slot),
        )
    _record_per_incident(state, n, receiver, outcome)
    return outcome


def _record_per_incident(
    state: NotifyState, n: Notification, receiver: str, outcome: Delivery
) -> None:
    firing_event = {"group": "repeat" if n.repeat else "opened", "escalation": "page"}
    events: Sequence[tuple[str, Sequence]] = (
        (n.event or firing_event.get(n.kind, n.kind), n.firing),
        ("resolved", n.resolved),
    )
    for event, alerts in events:
        for alert in alerts:
            if alert.incident_id is None:
                continue
            state.store.record_delivery(
                alert.incident_id, event, receiver, outcome.ok, outcome.error
            )
            if outcome.ok and event != "resolved":
                state.store.mark_notified(alert.incident_id)
