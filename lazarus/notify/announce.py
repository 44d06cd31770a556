"""One message about one incident, now, to every receiver its labels route to: remediation
outcomes from the recover run, and a person's ack or approval for the team to see.

Unlike the grouped alerts (lazarus.notify.dispatch) these are not held for ``group_wait``:
the team hears the moment a person took the incident or recovery ended.
"""

from __future__ import annotations

from lazarus.config import Notify
from lazarus.model import Incident
from lazarus.notify.dispatch import groupings
from lazarus.notify.escalation import AckInput, acked_line, acknowledge
from lazarus.notify.links import Reach
from lazarus.notify.message import Message, render, short
from lazarus.notify.send import deliver_with_retries
from lazarus.notify.state import Alert, Notification, NotifyState


def incident_notifications(
    notify: Notify, incident: Incident, event: str, message: Message
) -> list[Notification]:
    """``message`` about ``incident`` once to each receiver its labels route to."""
    alert = Alert.of(incident)
    receivers = dict.fromkeys(g.receiver for g in groupings(notify, alert.labels))
    return [
        Notification(f"incident:{incident.id}:{event}", "incident", name, message.title,
                     message.body, firing=(alert,), event=event, sms=short(message))
        for name in receivers
    ]  # fmt: skip


def tell_team(
    state: NotifyState, notify: Notify, incident: Incident, event: str, message: Message
) -> int:
    """Send a person's step (``event``) on ``incident`` outside Prefect (the CLI); how many
    receivers failed."""
    failed = 0
    for n in incident_notifications(notify, incident, event, message):
        failed += not deliver_with_retries(state, notify, n).ok
    return failed


def take(
    state: NotifyState, notify: Notify, incident_id: int, ack: AckInput, reach: Reach, now: float
) -> tuple[Incident, int] | None:
    """A person takes an incident (shell, signed link): escalation and repeats stop, the audit
    records it, and the team is told. The incident and how many receivers missed the news; None
    when it has no firing alert to acknowledge."""
    alert = acknowledge(state, incident_id, ack, now)
    if alert is None or alert.incident_id is None:
        return None
    incident = state.store.get(alert.incident_id)
    message = render(incident, "acknowledged", actions=[acked_line(ack)], reach=reach, now=now)
    return incident, tell_team(state, notify, incident, "acknowledged", message)
