"""Recovery leases: who is remediating an incident, at which step, and until when.

A recover run holds a lease on its incident and renews it while it lives; its steps record
where it is. A run killed mid-way (``kill -9``, a lost worker, a full disk) stops renewing, so
its lease runs out; ``reconcile`` then finds the incident still ``remediating``, records the
step it stopped at, escalates it ("interrupted at step X") and frees its fleet-cap slot, the
way Rundeck cleans up the executions left running when it starts. Nothing stays stuck.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from lazarus.model import Incident, IncidentState
from lazarus.playbooks.guards import Guards
from lazarus.store import Store

LEASE_TTL = 60.0  # a run that has not renewed for this long is gone
RENEW_EVERY = 10.0


class RecoveryLease:
    """Held by one recover run for its incident; renewed by a daemon thread until released."""

    def __init__(
        self,
        store: Store,
        incident_id: int,
        owner: str,
        ttl: float = LEASE_TTL,
        clock: Callable[[], float] = time.time,
    ):
        self.store, self.incident_id, self.owner, self.ttl, self.clock = (
            store,
            incident_id,
            owner,
            ttl,
            clock,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="recovery-lease")

    def __enter__(self) -> RecoveryLease:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO recovery_leases (incident_id, owner, step, until) VALUES (?,?,?,?)"
                " ON CONFLICT (incident_id) DO UPDATE SET owner = excluded.owner,"
                " step = excluded.step, until = excluded.until",
                (self.incident_id, self.owner, "(before the first step)", self.clock() + self.ttl),
            )
        self._thread.start()
        return self

    def at_step(self, step: str) -> None:
        """Record the step about to run: what ``reconcile`` reports if the run dies in it."""
        with self.store.transaction() as db:
            db.execute(
                "UPDATE recovery_leases SET step = ?, until = ? WHERE incident_id = ?",
                (step, self.clock() + self.ttl, self.incident_id),
            )

    def _renew(self) -> None:
        while not self._stop.wait(min(RENEW_EVERY, self.ttl / 3)):
            try:
                with self.store.transaction() as db:
                    db.execute(
                        "UPDATE recovery_leases SET until = ? WHERE incident_id = ? AND owner = ?",
                        (self.clock() + self.ttl, self.incident_id, self.owner),
                    )
            except Exception:  # a failed renewal is retried next round;
                continue  # if the store stays unwritable the lease lapses, as it should

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self.store.transaction() as db:
            db.execute("DELETE FROM recovery_leases WHERE incident_id = ?", (self.incident_id,))


def reconcile(store: Store, now: float | None = None, ttl: float = LEASE_TTL) -> list[Incident]:
    """Escalate every incident left ``remediating`` by a run whose lease ran out (or that never
    took one and started longer than ``ttl`` ago); free its fleet-cap slot. Returns them."""
    now = time.time() if now is None else now
    stuck = []
    for incident in store.active():
        if incident.state is not IncidentState.REMEDIATING:
            continue
        with store.transaction() as db:
            row = db.execute(
                "SELECT step, until FROM recovery_leases WHERE incident_id = ?", (incident.id,)
            ).fetchone()
            started = incident.action_at or incident.detected_at
            if (row is not None and row["until"] > now) or (row is None and started > now - ttl):
                continue
            step = row["step"] if row is not None else "(unknown: the run took no lease)"
            db.execute("DELETE FROM recovery_leases WHERE incident_id = ?", (incident.id,))
        Guards(store).release(incident.service or incident.host, incident.host)
        reason = f"interrupted at step {step}: the recover run stopped without finishing"
        target = f"{step}@{incident.host}"
        store.record_action(incident.id, "reconcile", target, "lazarus", False, reason)
        moved = store.transition(
            incident.id, IncidentState.ESCALATED, reason=reason, expect=(IncidentState.REMEDIATING,)
        )
        if moved is not None:
            stuck.append(moved)
    return stuck
