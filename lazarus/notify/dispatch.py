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

from lazarus.config import Notify
from lazarus.notify import escalation
from lazarus.notify.inhibit import inhibited
from lazarus.notify.message import render_group, render_reminder, short
from lazarus.notify.route import Grouping, routes_for
from lazarus.notify.silences import active_silences, due_reminders, mute_reason
from lazarus.notify.state import (
    Alert,
    Notification,
    NotifyState,
    alert_row,
    claim_undelivered,
    dumps,
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


def flush(state: NotifyState, notify: Notify, now: float) -> list[Notification]:
    """Claim every message due at ``now``; the caller delivers them (``send.attempt``)."""
    with state.tx() as db:
        alerts = {r["fingerprint"]: alert_row(r) for r in db.execute("SELECT * FROM notify_alerts")}
        firing = [a for a in alerts.values() if a.status == "firing"]
        silences = active_silences(db, now)
        muted = inhibited(firing, notify.inhibit_rules)
        for alert in firing:
            reason = mute_reason(alert.labels, silences, notify, now)
            if reason:
                muted.setdefault(alert.fingerprint, reason)
        members: dict[str, list[str]] = {}
        for key, fingerprint in db.execute("SELECT group_key, fingerprint FROM notify_members"):
            members.setdefault(key, []).append(fingerprint)
        groups = db.execute("SELECT * FROM notify_groups ORDER BY key").fetchall()
        out = [
            n
            for g in groups
            if (n := _flush_group(db, notify, g, [alerts[f] for f in members.get(g["key"], [])],
                                  muted, now))
        ]  # fmt: skip
        out += escalation.due_pages(db, notify, muted, now)
        out += _reminders(db, notify, now)
        out += claim_undelivered(db, now)  # what no receiver took last time
        db.execute(
            "DELETE FROM notify_alerts WHERE status = 'resolved' AND fingerprint NOT IN"
            " (SELECT fingerprint FROM notify_members)"
        )
    return out


def _flush_group(
    db: sqlite3.Connection, notify: Notify, group: sqlite3.Row, members: Sequence[Alert],
    muted: dict[str, str], now: float,
) -> Notification | None:  # fmt: skip
    key, sent = group["key"], set(json.loads(group["sent"]))
    firing = [a for a in members if a.status == "firing" and a.fingerprint not in muted]
    resolved = [a for a in members if a.status == "resolved"]
    told = [a for a in resolved if a.fingerprint in sent] if notify.send_resolved else []
    untold = {a.fingerprint for a in resolved} - {a.fingerprint for a in told}
    _drop(db, key, sorted(untold))
    if sent & untold:  # forget them, so one that fires again is news
        sent -= untold
        db.execute("UPDATE notify_groups SET sent = ? WHERE key = ?", (dumps(sorted(sent)), key))
    new = {a.fingerprint for a in firing} - sent
    repeat = False
    if group["flushed_at"] is None:
        due = bool(firing) and now >= group["created_at"] + group["wait"]
    elif new or told:
        due = now >= group["flushed_at"] + group["interval"]
    else:
        repeat = due = any(not a.acked_by for a in firing) and (
            now >= group["flushed_at"] + group["repeat"]
        )
    if due:
        db.execute(
            "UPDATE notify_groups SET flushed_at = ?, sent = ? WHERE key = ?",
            (now, dumps(sorted(a.fingerprint for a in firing)), key),
        )
        _drop(db, key, [a.fingerprint for a in told])
    if len(members) == len(resolved) and (due or not told):
        db.execute("DELETE FROM notify_groups WHERE key = ?", (key,))
    if not due:
        return None
    labels = json.loads(group["labels"])
    message = render_group(labels, firing, told, repeat=repeat)
    return Notification(key, "group", group["receiver"], message.title, message.body,
                        tuple(firing), tuple(told), repeat, labels, sms=short(message))  # fmt: skip


def _drop(db: sqlite3.Connection, key: str, fingerprints: Sequence[str]) -> None:
    db.executemany(
        "DELETE FROM notify_members WHERE group_key = ? AND fingerprint = ?",
        [(key, f) for f in fingerprints],
    )


def _reminders(db: sqlite3.Connection, notify: Notify, now: float) -> list[Notification]:
    """One reminder per silence about to end, to the root receiver (or the fallback)."""
    receiver = (notify.route.receiver if notify.route else None) or notify.fallback
    if receiver is None and notify.receivers:
        receiver = notify.receivers[0].name
    if receiver is None:
        return []
    return [
        Notification(f"reminder:{s.id}", "reminder", receiver, m.title, m.body, sms=short(m))
        for s in due_reminders(db, now, notify.silence_reminder)
        if (m := render_reminder(s))
    ]
