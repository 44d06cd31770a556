"""Which sessions end_stuck_transactions ends, and how: the decision, without a server."""

from __future__ import annotations

import pytest

from lazarus.snapshots.stuck import Session, plan

LIMITS = {"idle_in_transaction_for": 60.0, "blocking_for": 10.0}


def session(state: str, idle_s: float = 0.0, blocking_s: float | None = None) -> Session:
    return Session(
        pid=42,
        user="app",
        state=state,
        query="UPDATE t SET x = 1",
        idle_s=idle_s,
        blocking_s=blocking_s,
    )


@pytest.mark.parametrize(
    ("state", "idle_s", "blocking_s", "expected"),
    [
        ("idle in transaction", 61, None, ("terminate", 61)),
        ("idle in transaction (aborted)", 90, None, ("terminate", 90)),
        ("idle in transaction", 59, None, None),  # not yet past the limit
        ("active", 600, 11, ("cancel", 11)),  # a running query blocking others: cancel it
        ("idle in transaction", 5, 12, ("terminate", 12)),  # a cancel would do nothing here
        ("active", 600, 9, None),  # blocks, but not for long enough
        ("idle", 3600, None, None),  # idle outside a transaction holds nothing
    ],
)
def test_plan(state: str, idle_s: float, blocking_s: float | None, expected: tuple | None) -> None:
    planned = plan(session(state, idle_s, blocking_s), **LIMITS)

    if expected is None:
        assert planned is None
    else:
        assert planned is not None and (planned.action, planned.age_s) == expected
        assert planned.pid == 42 and planned.query == "UPDATE t SET x = 1"
        assert not planned.ended  # planned, not yet done


def test_a_waiting_writer_at_the_head_of_a_lock_queue_is_never_ended() -> None:
    from dataclasses import replace

    head = replace(session("active", blocking_s=30.0), waiting=True)
    assert plan(head, idle_in_transaction_for=60, blocking_for=10) is None
