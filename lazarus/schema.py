"""Every table of the Lazarus store, as numbered migrations applied once each, in order.

``Store`` applies the versions a database has not seen yet, one transaction each, and records
them in ``lazarus_schema``; SQLite and PostgreSQL run the same text (``lazarus.db`` translates).
No module creates a table on first use: a store opened once has every table, so a read never
meets a missing one and two workers never race to create one. A change to a table is a new
version appended here (``ALTER TABLE ...``), never an edit of an applied one.

Version 2 gathered the tables the feature modules used to create on first use; it says ``IF NOT
EXISTS`` because a store of version 1 may already hold some of them, identical.
"""

from __future__ import annotations

_CORE = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    host TEXT NOT NULL,
    service TEXT NOT NULL,
    symptom TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL,
    labels TEXT NOT NULL,
    detected_at REAL NOT NULL,
    notified_at REAL,
    action_at REAL,
    verified_at REAL,
    closed_at REAL,
    reason TEXT NOT NULL DEFAULT '',
    flow_run_url TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_incident
    ON incidents (fingerprint) WHERE state <> 'resolved';
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    event TEXT NOT NULL,
    receiver TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    actor TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS streaks (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS last_seen (
    fingerprint TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""

_FEATURES = """
CREATE TABLE IF NOT EXISTS watch_cycles (
    shard TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    holder TEXT NOT NULL,
    started REAL NOT NULL,
    expires REAL NOT NULL,
    finished REAL,
    PRIMARY KEY (shard, cycle)
);
CREATE TABLE IF NOT EXISTS notify_alerts (
    fingerprint TEXT PRIMARY KEY,
    incident_id INTEGER,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL,
    flow_run_url TEXT NOT NULL DEFAULT '',
    acked_by TEXT NOT NULL DEFAULT '',
    acked_at REAL
);
CREATE TABLE IF NOT EXISTS notify_groups (
    key TEXT PRIMARY KEY,
    receiver TEXT NOT NULL,
    labels TEXT NOT NULL,
    wait REAL NOT NULL,
    interval REAL NOT NULL,
    repeat REAL NOT NULL,
    created_at REAL NOT NULL,
    flushed_at REAL,
    sent TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS notify_members (
    group_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (group_key, fingerprint)
);
CREATE TABLE IF NOT EXISTS notify_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    pause_remediation INTEGER NOT NULL DEFAULT 0,
    reminded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS notify_escalations (
    fingerprint TEXT PRIMARY KEY,
    policy INTEGER NOT NULL,
    level INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    next_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    receiver TEXT NOT NULL,
    alerts INTEGER NOT NULL,
    ok INTEGER,
    error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_sends_by_receiver ON notify_sends (receiver, at);
CREATE TABLE IF NOT EXISTS notify_undelivered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    notification TEXT NOT NULL,
    first_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playbook_runs (
    target TEXT NOT NULL, playbook TEXT NOT NULL, at REAL NOT NULL, ok INTEGER,
    counted INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS playbook_runs_key ON playbook_runs (playbook, target, at);
CREATE TABLE IF NOT EXISTS breaker_acts (
    target TEXT NOT NULL, playbook TEXT NOT NULL, action TEXT NOT NULL, at REAL NOT NULL,
    counted INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS breaker_acts_key ON breaker_acts (playbook, target, at);
CREATE TABLE IF NOT EXISTS fleet_leases (
    service TEXT NOT NULL, host TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (service, host)
);
CREATE TABLE IF NOT EXISTS recovery_leases (
    incident_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, step TEXT NOT NULL, until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS detector_series (
    key TEXT PRIMARY KEY, series TEXT NOT NULL, labels TEXT NOT NULL,
    cohort INTEGER NOT NULL, col INTEGER NOT NULL, last_at REAL NOT NULL, silent INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS detector_cohorts (id INTEGER PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS detector_ring_slots (cohort INTEGER NOT NULL, ring TEXT NOT NULL,
    slot INTEGER NOT NULL, row BLOB NOT NULL, PRIMARY KEY (cohort, ring, slot));
CREATE TABLE IF NOT EXISTS detector_peers (key TEXT PRIMARY KEY, streak INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS detector_peer_groups
    (grp TEXT PRIMARY KEY, spread REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS log_offsets (
    host TEXT NOT NULL, path TEXT NOT NULL, inode INTEGER, pos INTEGER NOT NULL DEFAULT 0,
    skipping INTEGER NOT NULL DEFAULT 0, cut INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '', at REAL NOT NULL, PRIMARY KEY (host, path)
);
CREATE TABLE IF NOT EXISTS journal_cursors (
    host TEXT NOT NULL, unit TEXT NOT NULL, cursor TEXT, restarts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '', at REAL NOT NULL, PRIMARY KEY (host, unit)
);
CREATE TABLE IF NOT EXISTS recent_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at DOUBLE PRECISION NOT NULL,
    host TEXT NOT NULL,
    service TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS change_seen (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    at DOUBLE PRECISION NOT NULL,
    host TEXT NOT NULL,
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS db_checks (
    database TEXT NOT NULL,
    name TEXT NOT NULL,
    ran_at DOUBLE PRECISION NOT NULL,
    value DOUBLE PRECISION,
    good_value DOUBLE PRECISION,
    good_at DOUBLE PRECISION,
    broken TEXT NOT NULL DEFAULT '',
    broken_at DOUBLE PRECISION,
    PRIMARY KEY (database, name)
);
CREATE TABLE IF NOT EXISTS intake_alerts (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    PRIMARY KEY (fingerprint, starts_at)
)
"""

# Version 3: what a recover run did, for its group's message (lazarus.notify.outcomes), and the
# spent nonces of signed ack and silence links (lazarus.notify.links).
_ONCALL = """
CREATE TABLE IF NOT EXISTS notify_outcomes (
    incident_id INTEGER PRIMARY KEY,
    lines TEXT NOT NULL,
    diagnosis TEXT NOT NULL DEFAULT '',
    at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS link_uses (
    nonce TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL
)
"""

# Version 4: notify_undelivered is the outbox of every claimed message until it is delivered;
# a row is (re)sent by a flush once due (lazarus.notify.state).
_OUTBOX = "ALTER TABLE notify_undelivered ADD COLUMN due_at DOUBLE PRECISION NOT NULL DEFAULT 0"

# Version 5: a recovery lease says which steps its run finished, whether the step it is in may
# run again (lazarus.playbooks.leases: another run takes over), and how often it was taken over.
_TAKEOVER = """
ALTER TABLE recovery_leases ADD COLUMN done TEXT NOT NULL DEFAULT '';
ALTER TABLE recovery_leases ADD COLUMN resumable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recovery_leases ADD COLUMN takeovers INTEGER NOT NULL DEFAULT 0
"""

# Version 6: what a watch cycle leaves for whoever takes its shard over should it die
# (lazarus.cycles.note: its Prefect slot's lease, freed by the successor).
_CYCLE_NOTE = "ALTER TABLE watch_cycles ADD COLUMN note TEXT NOT NULL DEFAULT ''"

# Version n is MIGRATIONS[n - 1]: statements separated by ";".
MIGRATIONS: tuple[str, ...] = (_CORE, _FEATURES, _ONCALL, _OUTBOX, _TAKEOVER, _CYCLE_NOTE)


def statements(script: str) -> list[str]:
    """The statements of one migration, in order."""
    return [s for s in script.split(";") if s.strip()]
