"""Silences (ad hoc, from the CLI) and maintenance windows (recurring, from the config).

Both mute the notifications of what they match; a maintenance window, and a silence added
with ``pause_remediation``, also stop automatic remediation: ``remediation_paused`` is the one
question the recover flow asks before it acts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from lazarus.config import Notify
from lazarus.errors import LazarusError
from lazarus.notify.route import matches_all, parse_matchers
from lazarus.notify.state import NotifyState, Silence
from lazarus.notify.windows import window_open


def add_silence(
    state: NotifyState,
    matchers: Sequence[str],
    *,
    starts_at: float,
    ends_at: float,
    comment: str,
    created_by: str,
    pause_remediation: bool = False,
) -> Silence:
    """Record a silence; matchers use Alertmanager's syntax and are checked here (ConfigError)."""
    if not matchers:
        raise LazarusError("a silence needs at least one matcher (it would mute everything)")
    if ends_at <= starts_at:
        raise LazarusError("a silence must end after it starts")
    for text in matchers:
        parse_matchers(text)
    with state.tx() as db:
        cur = db.execute(
            "INSERT INTO notify_silences (matchers, starts_at, ends_at, comment, created_by,"
            " pause_remediation) VALUES (?, ?, ?, ?, ?, ?)",
            (json.dumps(list(matchers)), starts_at, ends_at, comment, created_by,
             int(pause_remediation)),
        )  # fmt: skip
        silence_id = cur.lastrowid
    assert silence_id is not None
    return Silence(
        silence_id, tuple(matchers), starts_at, ends_at, comment, created_by, pause_remediation
    )


def list_silences(state: NotifyState, now: float, *, expired: bool = False) -> list[Silence]:
    """Active and pending silences (and expired ones too when asked), oldest first."""
    with state.tx() as db:
        rows = db.execute(
            "SELECT * FROM notify_silences WHERE ? OR ends_at > ? ORDER BY id", (expired, now)
        ).fetchall()
    return [_silence(r) for r in rows]


def expire_silence(state: NotifyState, silence_id: int, now: float) -> bool:
    """End a silence now; False when there is no such silence or it already ended."""
    with state.tx() as db:
        cur = db.execute(
            "UPDATE notify_silences SET ends_at = ?, starts_at = MIN(starts_at, ?)"
            " WHERE id = ? AND ends_at > ?",
            (now, now, silence_id, now),
        )
        return cur.rowcount == 1


def due_reminders(db: sqlite3.Connection, now: float, before: float) -> list[Silence]:
    """Active silences ending within ``before`` not reminded of yet; marks them (inside a tx)."""
    rows = db.execute(
        "SELECT * FROM notify_silences WHERE reminded = 0 AND starts_at <= ?"
        " AND ends_at > ? AND ends_at - ? <= ?",
        (now, now, before, now),
    ).fetchall()
    db.executemany(
        "UPDATE notify_silences SET reminded = 1 WHERE id = ?", [(r["id"],) for r in rows]
    )
    return [_silence(r) for r in rows]


def active_silences(db: sqlite3.Connection, now: float) -> list[Silence]:
    """Silences in force at ``now`` (inside a transaction)."""
    rows = db.execute(
        "SELECT * FROM notify_silences WHERE starts_at <= ? AND ends_at > ? ORDER BY id",
        (now, now),
    ).fetchall()
    return [_silence(r) for r in rows]


def mute_reason(
    labels: Mapping[str, str], silences: Sequence[Silence], notify: Notify, now: float
) -> str | None:
    """Why an alert with these labels is muted now (a silence or a window), or None."""
    for silence in silences:
        if matches_all(silence.matchers, labels):
            return f"silenced by #{silence.id} ({silence.comment})"
    for window in notify.maintenance:
        if matches_all(window.matchers, labels) and (
            window_open(window.schedule, window.duration, now) is not None
        ):
            return f"maintenance window {window.name!r}"
    return None


def remediation_paused(
    state: NotifyState, notify: Notify, facts: Mapping[str, str], now: float
) -> str | None:
    """Why automatic remediation must not act on an incident with ``facts`` now, or None.

    A maintenance window that matches (unless it says ``pause_remediation: false``), or an
    active silence added with ``pause_remediation``.
    """
    for window in notify.maintenance:
        if (
            window.pause_remediation
            and matches_all(window.matchers, facts)
            and window_open(window.schedule, window.duration, now) is not None
        ):
            return f"maintenance window {window.name!r} ({window.schedule}, {window.duration:g}s)"
    with state.tx() as db:
        silences = active_silences(db, now)
    for silence in silences:
        if silence.pause_remediation and matches_all(silence.matchers, facts):
            return f"silence #{silence.id} pauses remediation: {silence.comment}"
    return None


def _silence(r: sqlite3.Row) -> Silence:
    return Silence(
        r["id"], tuple(json.loads(r["matchers"])), r["starts_at"], r["ends_at"], r["comment"],
        r["created_by"], bool(r["pause_remediation"]),
    )  # fmt: skip
