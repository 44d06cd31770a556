"""Grouping and dispatch, as Alertmanager does it, with the state in the store.

``record`` files this cycle's alerts into the groups of the routes they match (dedup by
fingerprint); ``flush`` claims whatever is due at ``now``: a new group after ``group_wait``,
a changed one after ``group_interval``, an unchanged firing one after ``repeat_interval``,
escalation pages and silence reminders. Both run inside one store transaction each, so two
watch runs at once claim every message exactly once. Muted alerts (silences, maintenance
windows, inhibition) are left out of messages but stay in their groups.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lazarus.config import Notify
from lazarus.notify import escalation
from lazarus.notify.inhibit import inhibited
from lazarus.notify.links import Reach
from lazarus.notify.message import Said, render_group, render_reminder, short
from lazarus.notify.outcomes import incident_item
from lazarus.notify.route import Grouping, routes_for
from lazarus.notify.silences import active_silences, due_reminders, mute_reason
from lazarus.notify.state import (
    Alert,
    Notification,
    NotifyState,
    alert_row,
    claim_undelivered,
    dumps,
    hold,
    lease,
)


def groupings(notify: Notify, labels: dict[str, str]) -> list[Grouping]:
    """The route nodes an alert belongs to (every receiver, when no route is configured)."""
    if notify.route is None:
        return [Grouping(r.name, str(i)) for i, r in enumerate(notify.receivers)]
    return [g for g in routes_for(notify.route, labels) if g.receiver]


def record(
    state: NotifyState, notify: Notify, alerts: Iterable[Alert], now: float, *,
    complete: bool = False,
) -> None:  # fmt: skip
    """File alerts (firing or resolved) into their groups.

    ``complete`` says ``alerts`` holds every firing alert: any other alert still firing in the
    state is resolved now (an incident closed by a recovery run, say).
    """
    seen: set[str] = set()
    with state.tx() as db:
        for alert in alerts:
            seen.add(alert.fingerprint)
            if alert.status == "firing":
                _fire(db, notify, alert, now)
            else:
                _resolve(db, alert.fingerprint, alert.ends_at or now)
        if complete:
            firing = db.execute("SELECT fingerprint FROM notify_alerts WHERE status = 'firing'")
            for (fingerprint,) in firing.fetchall():
                if fingerprint not in seen:
                    _resolve(db, fingerprint, now)


def _fire(db: sqlite3.Connection, notify: Notify, alert: Alert, now: float) -> None:
    row = db.execute(
        "SELECT status FROM notify_alerts WHERE fingerprint = ?", (alert.fingerprint,)
    ).fetchone()
    if row is not None and row["status"] == "firing":
        db.execute(
            "UPDATE notify_alerts SET incident_id = ?, summary = ?, flow_run_url = ?"
            " WHERE fingerprint = ?",
            (alert.incident_id, alert.summary, alert.flow_run_url, alert.fingerprint),
        )
        return
    db.execute(
        "INSERT OR REPLACE INTO notify_alerts (fingerprint, incident_id, labels, summary, status,"
        " starts_at, flow_run_url) VALUES (?, ?, ?, ?, 'firing', ?, ?)",
        (alert.fingerprint, alert.incident_id, dumps(alert.labels), alert.summary,
         alert.starts_at, alert.flow_run_url),
    )  # fmt: skip
    for grouping in groupings(notify, alert.labels):
        key = f"{grouping.receiver}|{grouping.path}|{dumps(grouping.group_labels(alert.labels))}"
        db.execute(
            "INSERT OR IGNORE INTO notify_groups (key, receiver, labels, wait, interval, repeat,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, grouping.receiver, dumps(grouping.group_labels(alert.labels)),
             grouping.group_wait, grouping.group_interval, grouping.repeat_interval, now),
        )  # fmt: skip
        db.execute(
            "INSERT OR IGNORE INTO notify_members (group_key, fingerprint) VALUES (?, ?)",
            (key, alert.fingerprint),
        )
    escalation.track(db, notify, alert)


def _resolve(db: sqlite3.Connection, fingerprint: str, at: float) -> None:
    db.execute(
        "UPDATE notify_alerts SET status = 'resolved', ends_at = ?"
        " WHERE fingerprint = ? AND status = 'firing'",
        (at, fingerprint),
    )
    escalation.stop(db, fingerprint)


def flush(
    state: NotifyState, notify: Notify, now: float, reach: Reach | None = None
) -> list[Notification]:
    """Claim every message due at ``now``; the caller delivers them (``send.attempt``).

    Each message is rendered in the claiming transaction, from the store's record of each
    incident (its number, reason, what was done, its recover run), and kept in the outbox
    there until it is delivered."""
    reach = reach or Reach()
    with state.tx() as db:
        alerts = {r["fingerprint"]: alert_row(r) for r in db.execute("SELECT * FROM notify_alerts")}
        firing = [a for a in alerts.values() if a.status == "firing"]
        silences = active_silences(db, now)
        muted = inhibited(firing, notify.inhibit_rules)
        for alert in alerts.values():  # a resolved alert nobody heard of stays as quiet
            reason = mute_reason(alert.labels, silences, notify, now)
            if reason:
                muted.setdefault(alert.fingerprint, reason)
        escalated = {r[0] for r in db.execute("SELECT id FROM incidents WHERE state = 'escalated'")}
        members: dict[str, list[str]] = {}
        for key, fingerprint in db.execute("SELECT group_key, fingerprint FROM notify_members"):
            members.setdefault(key, []).append(fingerprint)
        groups = db.execute("SELECT * FROM notify_groups ORDER BY key").fetchall()
        out = [
            _render(db, c, reach, now)
            for g in groups
            if (c := _flush_group(db, notify, g, [alerts[f] for f in members.get(g["key"], [])],
                                  muted, escalated, now))
        ]  # fmt: skip
        out += escalation.due_pages(db, notify, muted, now, reach)
        out += _reminders(db, notify, now, reach)
        db.execute(
            "DELETE FROM notify_alerts WHERE status = 'resolved' AND fingerprint NOT IN"
            " (SELECT fingerprint FROM notify_members)"
        )
        # in the outbox until delivered, and what no receiver took last time
        return hold(db, out, now, lease(notify)) + claim_undelivered(db, now, lease(notify))


@dataclass(frozen=True)
class _Claim:
    """A group's message, claimed: each alert with how it is said."""

    key: str
    receiver: str
    labels: dict[str, str]
    said: tuple[tuple[Alert, Said], ...]
    repeat: bool


def _flush_group(
    db: sqlite3.Connection, notify: Notify, group: sqlite3.Row, members: Sequence[Alert],
    muted: dict[str, str], escalated: set[int], now: float,
) -> _Claim | None:  # fmt: skip
    """Whether the group speaks now, Alertmanager's way: first after ``group_wait``, then after
    ``group_interval`` when an incident joined, changed state (escalated) or resolved, and every
    ``repeat_interval`` while one fires unacknowledged. An incident that opened and resolved
    between two messages is told once, as opened and recovered."""
    key, told = group["key"], _told(group["sent"])
    firing = [a for a in members if a.status == "firing" and a.fingerprint not in muted]
    resolved = [a for a in members if a.status == "resolved"]
    ended = [a for a in resolved if a.fingerprint in told] if notify.send_resolved else []
    recovered = [a for a in resolved if a.fingerprint not in told and a.fingerprint not in muted]
    gone = {a.fingerprint for a in resolved} - {a.fingerprint for a in (*ended, *recovered)}
    _drop(db, key, sorted(gone))
    says: dict[str, Said] = {
        a.fingerprint: "escalated" if a.incident_id in escalated else "firing" for a in firing
    }
    changed = any(told.get(f) != s for f, s in says.items())
    repeat = False
    if group["flushed_at"] is None:
        due = bool(firing or recovered) and now >= group["created_at"] + group["wait"]
    elif changed or ended or recovered:
        due = now >= group["flushed_at"] + group["interval"]
    else:
        repeat = due = any(not a.acked_by for a in firing) and (
            now >= group["flushed_at"] + group["repeat"]
        )
    if due or gone & set(told):
        kept = says if due else {f: s for f, s in told.items() if f not in gone}
        db.execute(
            "UPDATE notify_groups SET flushed_at = ?, sent = ? WHERE key = ?",
            (now if due else group["flushed_at"], json.dumps(kept, sort_keys=True), key),
        )
    if due:
        _drop(db, key, [a.fingerprint for a in (*ended, *recovered)])
    if len(members) == len(resolved) and (due or not (ended or recovered)):
        db.execute("DELETE FROM notify_groups WHERE key = ?", (key,))
    if not due:
        return None
    said = [(a, says[a.fingerprint]) for a in firing]
    said += [(a, "resolved") for a in ended] + [(a, "recovered") for a in recovered]
    return _Claim(key, group["receiver"], json.loads(group["labels"]), tuple(said), repeat)


def _told(sent: str) -> dict[str, str]:
    """What the group's last message said of each alert (stores before 0.2 kept a list)."""
    value = json.loads(sent)
    return dict.fromkeys(value, "firing") if isinstance(value, list) else value


def _render(db: sqlite3.Connection, claim: _Claim, reach: Reach, now: float) -> Notification:
    items = [incident_item(db, alert, said) for alert, said in claim.said]
    message = render_group(claim.labels, items, repeat=claim.repeat, reach=reach, now=now)
    firing = tuple(a for a, s in claim.said if s in ("firing", "escalated"))
    ended = tuple(a for a, s in claim.said if s in ("resolved", "recovered"))
    return Notification(claim.key, "group", claim.receiver, message.title, message.body, firing,
                        ended, claim.repeat, claim.labels, sms=short(message))  # fmt: skip


def _drop(db: sqlite3.Connection, key: str, fingerprints: Sequence[str]) -> None:
    db.executemany(
        "DELETE FROM notify_members WHERE group_key = ? AND fingerprint = ?",
        [(key, f) for f in fingerprints],
    )


def _reminders(
    db: sqlite3.Connection, notify: Notify, now: float, reach: Reach
) -> list[Notification]:
    """One reminder per silence about to end, to the root receiver (or the fallback)."""
    receiver = (notify.route.receiver if notify.route else None) or notify.fallback
    if receiver is None and notify.receivers:
        receiver = notify.receivers[0].name
    if receiver is None:
        return []
    return [
        Notification(f"reminder:{s.id}", "reminder", receiver, m.title, m.body, sms=short(m))
        for s in due_reminders(db, now, notify.silence_reminder)
        if (m := render_reminder(s, reach))
    ]
