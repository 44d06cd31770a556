"""Incident, delivery, audit and detector state: an SQLite file, or PostgreSQL for many workers.

Every change is one short transaction, so two watch runs at once still see one incident per
fingerprint: a partial unique index allows a single active incident for each, and state changes
are compare-and-set (``claim`` answers True to exactly one caller). ``state: {url:
postgresql://…}`` puts the same tables on PostgreSQL through ``lazarus.db``, which speaks the
same SQL there and serialises writers with an advisory lock, so this code is the one path.

Schema versions: plain numbered SQL in ``lazarus.schema``, recorded in ``lazarus_schema``, for
every table of every module. The store is hand-written DB-API SQL, so Alembic would bring
SQLAlchemy and a second description of every table; a numbered list applied in one transaction
each is all it needs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lazarus.db import PostgresConnection, is_url
from lazarus.errors import LazarusError
from lazarus.model import Anomaly, Incident, IncidentState
from lazarus.schema import MIGRATIONS, statements

if TYPE_CHECKING:
    from lazarus.config import Config


# Which states may follow which. Escalated stays active (no new incident every cycle) until the
# symptom clears or a person starts a recovery by hand.
_NEXT: dict[IncidentState, frozenset[IncidentState]] = {
    IncidentState.OPEN: frozenset(
        {
            IncidentState.NOTIFIED,
            IncidentState.REMEDIATING,
            IncidentState.RESOLVED,
            IncidentState.ESCALATED,
        }
    ),
    IncidentState.NOTIFIED: frozenset(
        {IncidentState.REMEDIATING, IncidentState.RESOLVED, IncidentState.ESCALATED}
    ),
    IncidentState.REMEDIATING: frozenset({IncidentState.RESOLVED, IncidentState.ESCALATED}),
    IncidentState.ESCALATED: frozenset({IncidentState.REMEDIATING, IncidentState.RESOLVED}),
    IncidentState.RESOLVED: frozenset(),
}

# The timestamp column each state stamps when entered.
_STAMP = {
    IncidentState.NOTIFIED: "notified_at",
    IncidentState.REMEDIATING: "action_at",
    IncidentState.RESOLVED: "closed_at",
    IncidentState.ESCALATED: "closed_at",
}


class InvalidTransition(LazarusError):
    """A state change the lifecycle does not allow (e.g. resolved -> remediating)."""


@dataclass(frozen=True)
class DeliveryRecord:
    incident_id: int
    event: str
    receiver: str
    ok: bool
    error: str
    attempt: int
    at: float


@dataclass(frozen=True)
class ActionRecord:
    incident_id: int
    action: str
    target: str
    actor: str
    ok: bool
    detail: str
    at: float


def _use_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL; SQLite answers "locked" without waiting while another connection opening
    the same new file switches it at the same moment, so this retries (bounded) itself."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt + 1 == attempts:
                raise
            time.sleep(0.05)


def store_for(config: Config) -> Store:
    """The config's store: ``state.url`` (PostgreSQL) when set, else the ``state.path`` file."""
    if config.state.url:
        from lazarus.secrets import resolve

        return Store(resolve(config.state.url).reveal())
    return Store(config.path(config.state.path))


class Store:
    """The state Lazarus keeps between watch runs. Safe to share between threads.

    ``target`` is an SQLite file path or a ``postgresql://`` URL.
    """

    def __init__(self, target: str | Path):
        self._lock = threading.Lock()
        self._db: Any
        if is_url(str(target)):
            self.path = None
            self._db = PostgresConnection(str(target))
        else:
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            _use_wal(self._db)
            self._db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    @property
    def dialect(self) -> str:
        return "sqlite" if self.path is not None else "postgresql"

    def _migrate(self) -> None:
        """Apply the numbered migrations this database has not seen yet, one transaction each
        (the version is read inside it, so two workers starting at once apply each once)."""
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS lazarus_schema"
                " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            with self._tx() as db:
                (done,) = db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM lazarus_schema"
                ).fetchone()
                if done >= version:
                    continue
                for statement in statements(script):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO lazarus_schema (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction, taken at once so concurrent writers queue instead of racing."""
        if self.path is None:
            with self._db.write() as db:
                yield db
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[Any]:
        """The same write transaction, for modules that keep their own tables in this file."""
        return self._tx()

    # --- incidents ----------------------------------------------------------------------------

    def open_incident(self, anomaly: Anomaly) -> tuple[Incident, bool]:
        """The active incident for the anomaly's fingerprint, and whether this call opened it."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM incidents WHERE fingerprint = ? AND state <> 'resolved'",
                (anomaly.fingerprint,),
            ).fetchone()
            if row is not None:
                return _incident(row), False
            cur = db.execute(
                "INSERT INTO incidents (fingerprint, host, service, symptom, severity, state,"
                " summary, labels, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    anomaly.fingerprint,
                    anomaly.host,
                    anomaly.service,
                    anomaly.symptom,
                    anomaly.severity,
                    IncidentState.OPEN.value,
                    anomaly.summary,
                    json.dumps(anomaly.labels, sort_keys=True),
                    anomaly.at,
                ),
            )
            row = db.execute("SELECT * FROM incidents WHERE id = ?", (cur.lastrowid,)).fetchone()
            return _incident(row), True

    def mark_seen(self, anomalies: Iterable[Anomaly]) -> None:
        """Remember when each fingerprint was last reported, for incidents that resolve by quiet."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO last_seen (fingerprint, at) VALUES (?, ?) ON CONFLICT (fingerprint)"
                " DO UPDATE SET at = max(last_seen.at, excluded.at)",
                [(a.fingerprint, a.at) for a in anomalies],
            )

    def last_seen(self, fingerprint: str) -> float | None:
        row = self._db.execute(
            "SELECT at FROM last_seen WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return None if row is None else float(row["at"])

    def get(self, incident_id: int) -> Incident:
        row = self._db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise KeyError(f"no incident {incident_id}")
        return _incident(row)

    def active(self) -> list[Incident]:
        rows = self._db.execute(
            "SELECT * FROM incidents WHERE state <> 'resolved' ORDER BY id"
        ).fetchall()
        return [_incident(r) for r in rows]

    def recent(self, limit: int = 50) -> list[Incident]:
        rows = self._db.execute(
            "SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_incident(r) for r in rows]

    def transition(
        self,
        incident_id: int,
        to: IncidentState,
        *,
        reason: str = "",
        expect: tuple[IncidentState, ...] | None = None,
        at: float | None = None,
    ) -> Incident | None:
        """Move an incident to ``to``; None when ``expect`` is given and the state is not in it.

        ``expect`` makes the change compare-and-set: of two workers claiming the same incident
        for remediation, exactly one gets it back.
        """
        at = time.time() if at is None else at
        with self._tx() as db:
            row = db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise KeyError(f"no incident {incident_id}")
            current = IncidentState(row["state"])
            if expect is not None and current not in expect:
                return None
            if to not in _NEXT[current]:
                raise InvalidTransition(f"incident {incident_id}: {current} -> {to} not allowed")
            sets, args = ["state = ?"], [to.value]
            if to in _STAMP:
                sets.append(f"{_STAMP[to]} = ?")
                args.append(at)
            if to is IncidentState.RESOLVED:
                sets.append("verified_at = COALESCE(verified_at, ?)")
                args.append(at)
            if reason:
                sets.append("reason = ?")
                args.append(reason)
            db.execute(f"UPDATE incidents SET {', '.join(sets)} WHERE id = ?", (*args, incident_id))
            return _incident(
                db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            )

    def claim(self, incident_id: int) -> Incident | None:
        """Take an incident for remediation; None when someone else already has it (or it ended)."""
        return self.transition(
            incident_id,
            IncidentState.REMEDIATING,
            expect=(IncidentState.OPEN, IncidentState.NOTIFIED, IncidentState.ESCALATED),
        )

    def mark_notified(self, incident_id: int, at: float | None = None) -> None:
        """Stamp the first successful notification; open -> notified if nobody moved it on yet."""
        at = time.time() if at is None else at
        with self._tx() as db:
            db.execute(
                "UPDATE incidents SET notified_at = COALESCE(notified_at, ?) WHERE id = ?",
                (at, incident_id),
            )
            db.execute(
                "UPDATE incidents SET state = ? WHERE id = ? AND state = ?",
                (IncidentState.NOTIFIED.value, incident_id, IncidentState.OPEN.value),
            )

    def set_flow_run_url(self, incident_id: int, url: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE incidents SET flow_run_url = ? WHERE id = ?", (url, incident_id))

    # --- deliveries and audit -----------------------------------------------------------------

    def record_delivery(
        self, incident_id: int, event: str, receiver: str, ok: bool, error: str = ""
    ) -> DeliveryRecord:
        with self._tx() as db:
            attempt = (
                db.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE incident_id = ? AND event = ?"
                    " AND receiver = ?",
                    (incident_id, event, receiver),
                ).fetchone()[0]
                + 1
            )
            record = DeliveryRecord(incident_id, event, receiver, ok, error, attempt, time.time())
            db.execute(
                "INSERT INTO deliveries (incident_id, event, receiver, ok, error, attempt, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (incident_id, event, receiver, int(ok), error, attempt, record.at),
            )
            return record

    def deliveries(self, incident_id: int) -> list[DeliveryRecord]:
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE incident_id = ? ORDER BY id", (incident_id,)
        ).fetchall()
        return [
            DeliveryRecord(
                r["incident_id"],
                r["event"],
                r["receiver"],
                bool(r["ok"]),
                r["error"],
                r["attempt"],
                r["at"],
            )
            for r in rows
        ]

    def record_action(
        self, incident_id: int, action: str, target: str, actor: str, ok: bool, detail: str = ""
    ) -> ActionRecord:
        record = ActionRecord(incident_id, action, target, actor, ok, detail[:2000], time.time())
        with self._tx() as db:
            db.execute(
                "INSERT INTO actions (incident_id, action, target, actor, ok, detail, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (incident_id, action, target, actor, int(ok), record.detail, record.at),
            )
        return record

    def actions(self, incident_id: int) -> list[ActionRecord]:
        rows = self._db.execute(
            "SELECT * FROM actions WHERE incident_id = ? ORDER BY id", (incident_id,)
        ).fetchall()
        return [
            ActionRecord(
                r["incident_id"],
                r["action"],
                r["target"],
                r["actor"],
                bool(r["ok"]),
                r["detail"],
                r["at"],
            )
            for r in rows
        ]

    # --- detector state -----------------------------------------------------------------------

    def streaks(self) -> dict[str, int]:
        """Consecutive failing cycles per detector key, carried from one watch run to the next."""
        return {r["key"]: r["count"] for r in self._db.execute("SELECT * FROM streaks")}

    def save_streaks(self, streaks: Mapping[str, int]) -> None:
        """Store this cycle's verdicts: a count of 0 ends a streak; keys not given (another
        shard's targets) keep theirs. Only what changed is written: a healthy fleet of 5,000
        targets wrote 10,000 deletes a cycle, a round trip each on PostgreSQL."""
        with self._tx() as db:
            held = {r[0]: r[1] for r in db.execute("SELECT key, count FROM streaks")}
            db.executemany(
                "DELETE FROM streaks WHERE key = ?",
                [(k,) for k, v in streaks.items() if v <= 0 and k in held],
            )
            db.executemany(
                "INSERT INTO streaks (key, count) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET count = excluded.count",
                [(k, v) for k, v in streaks.items() if v > 0 and held.get(k) != v],
            )


def _incident(row: sqlite3.Row) -> Incident:
    return Incident(
        id=row["id"],
        fingerprint=row["fingerprint"],
        host=row["host"],
        service=row["service"],
        symptom=row["symptom"],
        severity=row["severity"],
        state=IncidentState(row["state"]),
        summary=row["summary"],
        labels=json.loads(row["labels"]),
        detected_at=row["detected_at"],
        notified_at=row["notified_at"],
        action_at=row["action_at"],
        verified_at=row["verified_at"],
        closed_at=row["closed_at"],
        reason=row["reason"],
        flow_run_url=row["flow_run_url"],
    )
