"""Escalation: an alert nobody acknowledges within ``after`` pages the next level.

Levels count from the alert's start; after the last one, it is paged again every
``repeat_interval`` up to ``repeat`` times, then Lazarus stops (a repeat limit, not a loop).
An acknowledgement (CLI ``lazarus ack``, or the ``AckInput`` of a paused flow in the Prefect
UI) stops the pages and the group repeats for that alert; resolving it does too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from lazarus.config import Notify
from lazarus.notify.links import Reach
from lazarus.notify.message import render_page, short
from lazarus.notify.outcomes import incident_item
from lazarus.notify.route import matches_all
from lazarus.notify.state import Alert, Notification, NotifyState, alert_row
from lazarus.oncall import ACK


class AckInput(BaseModel):
    """What a person enters to acknowledge an incident (CLI, or a Prefect flow's input form)."""

    model_config = ConfigDict(extra="forbid")

    acknowledged_by: str = Field(min_length=1, max_length=100, description="who takes it")
    comment: str = Field("", max_length=500)


def acked_line(ack: AckInput) -> str:
    """How the team reads an ack: ``acknowledged by ana: on it``."""
    return f"acknowledged by {ack.acknowledged_by}" + (f": {ack.comment}" if ack.comment else "")


def track(db: sqlite3.Connection, notify: Notify, alert: Alert) -> None:
    """Start the escalation clock of a newly firing alert, under the first policy it matches."""
    for index, policy in enumerate(notify.escalation):
        if matches_all(policy.matchers, alert.labels):
            db.execute(
                "INSERT OR REPLACE INTO notify_escalations (fingerprint, policy, level, pages,"
                " next_at) VALUES (?, ?, 0, 0, ?)",
                (alert.fingerprint, index, alert.starts_at + policy.levels[0].after),
            )
            return


def stop(db: sqlite3.Connection, fingerprint: str) -> None:
    db.execute("DELETE FROM notify_escalations WHERE fingerprint = ?", (fingerprint,))


def due_pages(
    db: sqlite3.Connection, notify: Notify, muted: Mapping[str, str], now: float,
    reach: Reach | None = None,
) -> list[Notification]:  # fmt: skip
    """Claim every page that is due (inside the flush transaction): each is paged once."""
    pages = []
    rows = db.execute(
        "SELECT e.fingerprint AS fp, e.policy, e.level, e.pages, a.* FROM notify_escalations e"
        " JOIN notify_alerts a ON a.fingerprint = e.fingerprint WHERE e.next_at <= ?",
        (now,),
    ).fetchall()
    for row in rows:
        alert = alert_row(row)
        if alert.status != "firing" or alert.acked_by or row["policy"] >= len(notify.escalation):
            stop(db, alert.fingerprint)
            continue
        if alert.fingerprint in muted:  # a silence or window holds the page until it ends
            continue
        policy = notify.escalation[row["policy"]]
        level = min(row["level"], len(policy.levels) - 1)
        receiver = policy.levels[level].receiver
        said = "escalated" if _escalated(db, alert.incident_id) else "firing"
        message = render_page(incident_item(db, alert, said), level + 1, receiver, reach, now)
        pages.append(
            Notification(f"page:{alert.fingerprint}:{level + 1}:{row['pages']}", "escalation",
                         receiver, message.title, message.body, firing=(alert,),
                         sms=short(message))
        )  # fmt: skip
        if level + 1 < len(policy.levels):
            _advance(
                db,
                alert.fingerprint,
                level + 1,
                0,
                alert.starts_at + policy.levels[level + 1].after,
            )
        elif row["pages"] < policy.repeat:
            _advance(
                db, alert.fingerprint, level + 1, row["pages"] + 1, now + policy.repeat_interval
            )
        else:
            stop(db, alert.fingerprint)
    return pages


def _escalated(db: sqlite3.Connection, incident_id: int | None) -> bool:
    row = db.execute("SELECT state FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return row is not None and row["state"] == "escalated"


def _advance(db: sqlite3.Connection, fingerprint: str, level: int, pages: int, at: float) -> None:
    db.execute(
        "UPDATE notify_escalations SET level = ?, pages = ?, next_at = ? WHERE fingerprint = ?",
        (level, pages, at, fingerprint),
    )


def acknowledge(state: NotifyState, incident_id: int, ack: AckInput, now: float) -> Alert | None:
    """Acknowledge the firing alert of an incident; None when it is not firing (or unknown)."""
    with state.tx() as db:
        row = db.execute(
            "SELECT * FROM notify_alerts WHERE incident_id = ? AND status = 'firing'",
            (incident_id,),
        ).fetchone()
        if row is None:
            return None
        by = ack.acknowledged_by + (f" ({ack.comment})" if ack.comment else "")
        db.execute(
            "UPDATE notify_alerts SET acked_by = ?, acked_at = ? WHERE fingerprint = ?",
            (by, now, row["fingerprint"]),
        )
        stop(db, row["fingerprint"])
        db.execute(  # in the incident's audit too: `incidents --show`, the board and the report
            "INSERT INTO actions (incident_id, action, target, actor, ok, detail, at)"
            " VALUES (?, ?, ?, ?, 1, ?, ?)",
            (incident_id, ACK, row["fingerprint"], ack.acknowledged_by, ack.comment, now),
        )
        row = db.execute(
            "SELECT * FROM notify_alerts WHERE fingerprint = ?", (row["fingerprint"],)
        ).fetchone()
    return alert_row(row)
