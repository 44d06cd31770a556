"""One message about one incident, now, to every receiver its labels route to: remediation
outcomes from the recover run, and a person's ack or approval for the team to see.

Unlike the grouped alerts (lazarus.notify.dispatch) these are not held for ``group_wait``:
the team hears the moment a person took the incident or recovery ended.
"""

from __future__ import annotations

from lazarus.config import Notify
from lazarus.model import Incident
from lazarus.notify.dispatch import groupings
from lazarus.notify.message import Message, short
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
