"""Which PostgreSQL sessions are stuck, and what ending each takes: decided apart from the driver.

A session idle inside a transaction keeps its locks and its snapshot until it ends, so past the
limit it is terminated. A query that others have waited on past the limit is cancelled; when the
blocker sits idle in its transaction a cancel does nothing, so it is terminated instead. A
session that itself waits on a lock is a victim in a queue (writers behind one row lock wait on
each other), never a blocker to end: ending the head of the queue frees them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

# One row per client session of the current database: who, doing what, idle for how long, and
# how long the longest of the sessions waiting on its locks has waited (NULL: it blocks nobody).
QUERY = """
WITH waits AS (
    SELECT unnest(pg_blocking_pids(pid)) AS blocker,
           extract(epoch FROM now() - coalesce(query_start, state_change)) AS waited
    FROM pg_stat_activity WHERE wait_event_type = 'Lock'
)
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.state, ''), left(a.query, 200),
       coalesce(extract(epoch FROM now() - a.state_change), 0)::float8,
       (SELECT max(waited) FROM waits WHERE blocker = a.pid)::float8,
       coalesce(a.wait_event_type = 'Lock', false)
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Session:
    """One row of QUERY."""

    pid: int
    user: str
    state: str
    query: str
    idle_s: float
    blocking_s: float | None
    waiting: bool = False  # itself waiting on a lock


class EndedBackend(BaseModel):
    """One session acted on, why, and whether the server said it was done."""

    model_config = ConfigDict(frozen=True)

    pid: int
    user: str
    state: str
    query: str
    age_s: float
    action: Literal["terminate", "cancel"]
    reason: str
    ended: bool = False


def plan(
    session: Session, *, idle_in_transaction_for: float, blocking_for: float
) -> EndedBackend | None:
    """What to do about ``session`` (not yet done), or None when it is not stuck."""
    idle_tx = session.state.startswith("idle in transaction")
    if idle_tx and session.idle_s >= idle_in_transaction_for:
        age, reason = session.idle_s, f"{session.state} for {session.idle_s:.1f}s"
        action: Literal["terminate", "cancel"] = "terminate"
    elif (
        session.blocking_s is not None
        and session.blocking_s >= blocking_for
        and not session.waiting
    ):
        age, reason = session.blocking_s, f"blocking others for {session.blocking_s:.1f}s"
        action = "terminate" if idle_tx else "cancel"
    else:
        return None
    return EndedBackend(
        pid=session.pid,
        user=session.user,
        state=session.state,
        query=session.query,
        age_s=round(age, 3),
        action=action,
        reason=reason,
    )
