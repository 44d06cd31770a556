"""The watch's eye on databases: checks -> ``db_corrupt``, stuck sessions ->
``db_stuck_transaction``, and the settle time after a data recovery.

Each check runs when its interval is due; between runs its last verdict stands, so a damaged
database stays reported and its incident does not close for quiet. Per check the store keeps
the last good value (the baseline of ``max_drop``, never moved by a bad run), when it last
passed (``good_at``: point-in-time recovery goes back to just then) and when it first failed.
The incident's host is the database's own inventory host; its service is the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lazarus import snapshots
from lazarus.config import Config, Database
from lazarus.errors import LazarusError
from lazarus.model import Anomaly, IncidentState
from lazarus.snapshots.checks import CheckResult
from lazarus.store import Store

LOCAL_HOST = "local"  # a database with no inventory host (an SQLite file beside Lazarus)
DB_SYMPTOMS = ("db_corrupt", "db_stuck_transaction")


@dataclass(frozen=True)
class CheckState:
    ran_at: float
    value: float | None
    good_value: float | None
    good_at: float | None
    broken: str
    broken_at: float | None


@dataclass(frozen=True)
class DbWatch:
    """One cycle's verdicts on the databases, and the checks that could not run."""

    anomalies: list[Anomaly]
    failed_checks: list[CheckResult]
    errors: list[str]


def host_of(db: Database) -> str:
    return db.host or LOCAL_HOST


def watch_databases(config: Config, store: Store, now: float) -> DbWatch:
    """Run the due checks of every database and look for stuck sessions.

    A check is due in the cycle nearest its time: cycles jitter by up to half an interval, and
    a check every ``watch.interval`` must run every cycle, not every other one."""
    slack = config.watch.interval / 2
    anomalies: list[Anomaly] = []
    failed: list[CheckResult] = []
    errors: list[str] = []
    for db in config.inventory.databases:
        if db.checks:
            state = _load(store, db.name)
            due = [
                c
                for c in db.checks
                if c.name not in state or now - state[c.name].ran_at >= c.interval - slack
            ]
            previous = {n: s.good_value for n, s in state.items() if s.good_value is not None}
            results = snapshots.run_checks(db, due, previous) if due else []
            _save(store, db.name, results, now)
            failed += [r for r in results if r.error]
            corrupt = _corrupt(db, _load(store, db.name), now)
            anomalies += [corrupt] if corrupt else []
        if db.stuck is not None and db.kind == "postgres":
            try:
                anomalies += _stuck(db, now)
            except LazarusError as exc:
                errors.append(f"{db.name}: stuck-session query failed: {exc}")
    return DbWatch(anomalies, failed, errors)


def check_state(store: Store, database: str) -> dict[str, CheckState]:
    """What the store remembers of each check of ``database``."""
    return _load(store, database)


def _corrupt(db: Database, state: dict[str, CheckState], now: float) -> Anomaly | None:
    broken = [(n, s) for n, s in state.items() if s.broken and n in {c.name for c in db.checks}]
    if not broken:
        return None
    name, first = broken[0]
    summary = "; ".join(f"check {n!r} = {s.value:g}: {s.broken}" for n, s in broken)
    labels = {
        "database": db.name,
        "check": name,
        "value": f"{first.value:g}",
        "bound": first.broken,
        "bad_at": f"{first.broken_at or now:.3f}",
    }
    if first.good_at is not None:
        labels["good_at"] = f"{first.good_at:.3f}"
    if db.pitr is not None:  # WAL is archived: interval recovery is possible
        labels["pitr"] = "on"
    return Anomaly(host_of(db), db.name, "db_corrupt", "critical", f"{db.name}: {summary}",
                   now, labels)  # fmt: skip


def _stuck(db: Database, now: float) -> list[Anomaly]:
    assert db.stuck is not None
    sessions = snapshots.postgres.stuck_sessions(
        db,
        idle_in_transaction_for=db.stuck.idle_in_transaction,
        blocking_for=db.stuck.blocking,
    )
    if not sessions:
        return []
    what = "; ".join(f"pid {s.pid} ({s.user}) {s.reason}" for s in sessions[:5])
    labels = {
        "database": db.name,
        "pids": ",".join(str(s.pid) for s in sessions),
        "sessions": str(len(sessions)),
    }
    summary = f"{db.name}: {len(sessions)} stuck session(s): {what}"
    return [Anomaly(host_of(db), db.name, "db_stuck_transaction", "warning", summary, now, labels)]


def hold_settling(
    config: Config, store: Store, anomalies: Iterable[Anomaly], now: float
) -> tuple[list[Anomaly], list[Anomaly]]:
    """(kept, held): after a data recovery resolved an incident of a database, metrics that lag
    the restore (anomalies on its host or naming it) are held off for its ``settle`` time;
    the database's own checks are never held."""
    settling = []
    for incident in store.recent(200):
        db = _database(config, incident.labels.get("database", ""))
        if (
            db is not None
            and incident.symptom in DB_SYMPTOMS
            and incident.state is IncidentState.RESOLVED
            and incident.closed_at is not None
            and now - incident.closed_at < db.settle
        ):
            settling.append(db)
    kept, held = [], []
    for anomaly in anomalies:
        own = anomaly.symptom in DB_SYMPTOMS and anomaly.service == anomaly.labels.get("database")
        hit = not own and any(  # a database's own checks read the live data: never lagging
            anomaly.labels.get("database") == db.name
            or (db.host is not None and anomaly.host == db.host)
            for db in settling
        )
        (held if hit else kept).append(anomaly)
    return kept, held


def _database(config: Config, name: str) -> Database | None:
    return next((d for d in config.inventory.databases if d.name == name), None)


def _load(store: Store, database: str) -> dict[str, CheckState]:
    with store.transaction() as db:
        rows = db.execute(
            "SELECT name, ran_at, value, good_value, good_at, broken, broken_at FROM db_checks"
            " WHERE database = ? ORDER BY name",
            (database,),
        ).fetchall()
    return {r[0]: CheckState(*r[1:]) for r in rows}


def _save(store: Store, database: str, results: list[CheckResult], now: float) -> None:
    """Record this cycle's runs: a good run moves the baseline, a failed query changes no
    verdict (it says nothing about the data), a broken bound keeps the first time it broke."""
    with store.transaction() as db:
        for r in results:
            db.execute(
                "INSERT INTO db_checks (database, name, ran_at) VALUES (?, ?, ?)"
                " ON CONFLICT (database, name) DO UPDATE SET ran_at = excluded.ran_at",
                (database, r.check, now),
            )
            if r.error:
                continue
            if r.ok:
                db.execute(
                    "UPDATE db_checks SET value = ?, good_value = ?, good_at = ?, broken = '',"
                    " broken_at = NULL WHERE database = ? AND name = ?",
                    (r.value, r.value, now, database, r.check),
                )
            else:
                db.execute(
                    "UPDATE db_checks SET value = ?, broken = ?,"
                    " broken_at = coalesce(broken_at, ?) WHERE database = ? AND name = ?",
                    (r.value, r.broken, now, database, r.check),
                )
