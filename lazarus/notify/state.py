"""Notification state in the store's SQLite file: alerts, groups, silences, escalations, sends.

Every change runs in the store's write transaction (BEGIN IMMEDIATE), so several watch runs
or workers at once serialise on it: a group is flushed by exactly one of them per interval,
an escalation level is paged once, a rate-limit slot is taken once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from lazarus.config import Notify
from lazarus.model import Incident
from lazarus.store import Store

Status = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    """One incident as notification sees it; the fingerprint dedups it across watch runs."""

    fingerprint: str
    labels: dict[str, str]
    summary: str
    starts_at: float
    status: Status = "firing"
    incident_id: int | None = None
    flow_run_url: str = ""
    ends_at: float | None = None
    acked_by: str = ""

    @classmethod
    def of(cls, incident: Incident, status: Status = "firing") -> Alert:
        return cls(
            incident.fingerprint,
            incident.facts(),
            incident.summary,
            incident.detected_at,
            status,
            incident.id,
            incident.flow_run_url,
            incident.closed_at if status == "resolved" else None,
        )


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    comment: str
    created_by: str
    pause_remediation: bool = False


@dataclass(frozen=True)
class Notification:
    """One message claimed for one receiver; ``key`` names its group (or page, or reminder)."""

    key: str
    kind: Literal["group", "incident", "escalation", "reminder"]
    receiver: str
    title: str
    body: str
    firing: tuple[Alert, ...] = ()
    resolved: tuple[Alert, ...] = ()
    repeat: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    event: str = ""
    sms: str = ""
    first_at: float | None = None  # when it was first claimed: kept until it is delivered
    outbox: int | None = None  # its row in the outbox (notify_undelivered)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Notification:
        data = json.loads(text)
        for name in ("firing", "resolved"):
            data[name] = tuple(Alert(**a) for a in data[name])
        return cls(**data)


class NotifyState:
    """The notification tables of one store; safe to share between threads as the store is."""

    def __init__(self, store: Store):
        self.store = store

    def tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.store.transaction()

    def sends(self, receiver: str | None = None) -> list[sqlite3.Row]:
        """The send log, oldest first: what was attempted, to whom, and how it went."""
        with self.tx() as db:
            if receiver is None:
                return db.execute("SELECT * FROM notify_sends ORDER BY id").fetchall()
            return db.execute(
                "SELECT * FROM notify_sends WHERE receiver = ? ORDER BY id", (receiver,)
            ).fetchall()


UNDELIVERED_FOR = 86400.0  # a message undelivered for a day is dropped (its send log stays)
RETRY_BACKOFF_CAP = 300.0  # the longest wait between two flushes' tries of one message


def lease(notify: Notify) -> float:
    """How long a claimed message may take to be delivered before a flush sends it again:
    twice the worst case of its tries (each to the receiver and the fallback) and backoff."""
    tries = notify.retries + 1
    return 2 * (tries * 2 * notify.timeout + notify.retry_delay * 2**tries)


def hold(
    db: sqlite3.Connection, notifications: list[Notification], now: float, lease: float
) -> list[Notification]:
    """Put messages claimed now into the outbox, right after claiming them: a process that
    dies before it delivers them loses nothing, the next flush after ``lease`` sends them."""
    held = []
    for n in notifications:
        n = replace(n, first_at=n.first_at or now)
        row = db.execute(
            "INSERT INTO notify_undelivered (key, notification, first_at, due_at)"
            " VALUES (?, ?, ?, ?)",
            (n.key, n.to_json(), n.first_at, now + lease),
        ).lastrowid
        held.append(replace(n, outbox=row))
    return held


def delivered(state: NotifyState, notification: Notification) -> None:
    """A message is sent (or deliberately dropped): out of the outbox (lazarus.notify.send)."""
    if notification.outbox is not None:
        with state.tx() as db:
            db.execute("DELETE FROM notify_undelivered WHERE id = ?", (notification.outbox,))


def keep_undelivered(state: NotifyState, notification: Notification, now: float) -> None:
    """Keep a message that no receiver took (lazarus.notify.send). The first failure is due
    again at the next flush; after that each wait is as long as the message has waited, up to
    RETRY_BACKOFF_CAP: a receiver that is down for good is not hammered every cycle."""
    first = notification.first_at or now
    due = now + min(now - first, RETRY_BACKOFF_CAP)
    with state.tx() as db:
        if notification.outbox is not None:
            kept = db.execute(
                "UPDATE notify_undelivered SET due_at = ? WHERE id = ?", (due, notification.outbox)
            ).rowcount
            if kept:
                return
        db.execute(
            "INSERT INTO notify_undelivered (key, notification, first_at, due_at)"
            " VALUES (?, ?, ?, ?)",
            (notification.key, replace(notification, first_at=first).to_json(), first, due),
        )


def claim_undelivered(db: sqlite3.Connection, now: float, lease: float) -> list[Notification]:
    """Every message of the outbox that is due (it failed, or its sender died with it), leased
    for another ``lease`` seconds; those older than UNDELIVERED_FOR are dropped."""
    db.execute("DELETE FROM notify_undelivered WHERE first_at <= ?", (now - UNDELIVERED_FOR,))
    rows = db.execute(
        "SELECT id, notification FROM notify_undelivered WHERE due_at <= ? ORDER BY id", (now,)
    ).fetchall()
    db.executemany(
        "UPDATE notify_undelivered SET due_at = ? WHERE id = ?",
        [(now + lease, r["id"]) for r in rows],
    )
    return [replace(Notification.from_json(r["notification"]), outbox=r["id"]) for r in rows]


def alert_row(row: sqlite3.Row) -> Alert:
    return Alert(
        row["fingerprint"],
        json.loads(row["labels"]),
        row["summary"],
        row["starts_at"],
        row["status"],
        row["incident_id"],
        row["flow_run_url"],
        row["ends_at"],
        row["acked_by"],
    )


def dumps(value: Mapping[str, str] | list[str]) -> str:
    return json.dumps(value, sort_keys=True)
