"""What a recover run did, kept for the message that tells its incident's group.

A recovery's outcome is not sent on its own: the run records its steps and diagnosis here and
the incident's state in the store, and the group's next message (lazarus.notify.dispatch) says
it beside the group's other incidents, once, in the order things happened. Without an outcome
(still firing, or escalated by the reconcile of a killed run), the message lists the incident's
audit instead.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from lazarus.model import IncidentState
from lazarus.notify.message import Item, Said
from lazarus.notify.state import Alert, NotifyState
from lazarus.oncall import ACK, APPROVE, REJECT

_PERSON = {ACK: "acknowledged", APPROVE: "approved", REJECT: "rejected"}


def record_outcome(
    state: NotifyState, incident_id: int, lines: Sequence[str], diagnosis: str, now: float
) -> None:
    """Keep a recovery's step lines and diagnosis for its incident's next message."""
    with state.tx() as db:
        db.execute("DELETE FROM notify_outcomes WHERE incident_id = ?", (incident_id,))
        db.execute(
            "INSERT INTO notify_outcomes (incident_id, lines, diagnosis, at) VALUES (?, ?, ?, ?)",
            (incident_id, json.dumps(list(lines)), diagnosis, now),
        )


def incident_item(db: sqlite3.Connection, alert: Alert, said: Said) -> Item:
    """``alert`` as its message shows it, with its incident's record, read inside the claiming
    transaction (``db``): the reason, what was done, the diagnosis and the recover run."""
    if alert.incident_id is None:
        return Item(alert, said)
    incident = db.execute(
        "SELECT state, reason, flow_run_url, closed_at FROM incidents WHERE id = ?",
        (alert.incident_id,),
    ).fetchone()
    if incident is None:
        return Item(alert, said)
    outcome = db.execute(
        "SELECT lines, diagnosis FROM notify_outcomes WHERE incident_id = ?", (alert.incident_id,)
    ).fetchone()
    if outcome is not None:
        done, diagnosis = tuple(json.loads(outcome["lines"])), outcome["diagnosis"]
    else:
        audit = db.execute(
            "SELECT action, target, actor, ok, detail FROM actions WHERE incident_id = ?"
            " ORDER BY id",
            (alert.incident_id,),
        ).fetchall()
        done, diagnosis = tuple(_audit_line(a) for a in audit), ""
    reason = incident["reason"] if incident["state"] != IncidentState.OPEN.value else ""
    # the recover run may have started since the alert was filed; it ended when the store says
    ended = incident["closed_at"] if incident["state"] == IncidentState.RESOLVED.value else None
    linked = replace(
        alert,
        flow_run_url=incident["flow_run_url"] or alert.flow_run_url,
        ends_at=ended or alert.ends_at,
    )
    return Item(linked, said, reason, done, diagnosis)


def _audit_line(action: sqlite3.Row) -> str:
    verb = _PERSON.get(action["action"])
    who, detail = action["actor"], action["detail"]
    if verb:
        return f"{verb} by {who}" + (f": {detail}" if detail else "")
    result = "ok" if action["ok"] else "FAILED"
    return f"{action['action']} on {action['target']} by {who}: {result}" + (
        f": {detail[:160]}" if detail else ""
    )
