"""Recovery leases: who is remediating an incident, at which step, and until when.

A recover run holds a lease on its incident and renews it while it lives; before each step it
records the step, whether that step may safely run again (its action is ``idempotent``) and the
steps it finished. A run killed mid-way (``kill -9``, a lost worker, a full disk) stops
renewing, so its lease runs out (at once when its owner was a process of this machine that is
gone: ``lazarus serve`` restarted). ``reconcile`` then finds the incident still ``remediating``:

- when the step it stopped in may run again, it hands the lease over (once): another recover
  run ``take_over``s it, skips the finished steps and runs the interrupted one and the rest, so
  the step is neither lost nor done twice;
- otherwise (a step that is not safe to repeat, a run taken over once already, or one that
  stopped in compensation) it records the step, escalates the incident for a person
  ("interrupted at step X") and frees its fleet-cap slot, the way Rundeck cleans up the
  executions left running when it starts.

Nothing stays stuck: a handed-over lease nobody takes within ``HANDOVER_WAIT`` escalates too.
And a run killed before it claimed its incident leaves no lease at all: ``hand_over_unclaimed``
hands such an incident to another run, once, when nobody claimed it ``UNCLAIMED_WAIT`` lease
periods after it opened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from lazarus.cycles import gone
from lazarus.model import Incident, IncidentState
from lazarus.playbooks.guards import Guards
from lazarus.store import Store

LEASE_TTL = 60.0  # a run that has not renewed for this long is gone
RENEW_EVERY = 10.0
HANDED_OVER = "(handed over)"  # the owner of a lease waiting for the run that takes it over
BEFORE = "(before the first step)"  # nothing ran yet: another run may start it afresh
TAKEOVERS = 1  # a run that dies again after a takeover is a person's to look at
# Lease periods a handed-over recovery waits for the run that takes it over: an automation's
# run on a worker's next poll, its process start and diagnosis, on a loaded machine.
HANDOVER_WAIT = 8
# Lease periods an opened incident waits for automatic recovery to claim it: the automation's
# run on a worker's poll, its process start and diagnosis, on a loaded machine.
UNCLAIMED_WAIT = 2
_RESUMABLE_BLOCKS = ("steps/", "verify/")  # compensation after a failure is not resumed


class RecoveryLease:
    """Held by one recover run for its incident; renewed by a daemon thread until released.

    ``resumed``: this run took the lease over (``take_over``), so its record is kept."""

    def __init__(
        self,
        store: Store,
        incident_id: int,
        owner: str,
        ttl: float = LEASE_TTL,
        clock: Callable[[], float] = time.time,
        resumed: bool = False,
    ):
        self.store, self.incident_id, self.owner, self.ttl, self.clock = (
            store,
            incident_id,
            owner,
            ttl,
            clock,
        )
        self.resumed = resumed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="recovery-lease")

    def __enter__(self) -> RecoveryLease:
        if not self.resumed:
            with self.store.transaction() as db:
                db.execute(
                    "INSERT INTO recovery_leases (incident_id, owner, step, until, done,"
                    " resumable, takeovers) VALUES (?,?,?,?,'',1,0)"
                    " ON CONFLICT (incident_id) DO UPDATE SET owner = excluded.owner,"
                    " step = excluded.step, until = excluded.until, done = '', resumable = 1,"
                    " takeovers = 0",
                    (self.incident_id, self.owner, BEFORE, self.clock() + self.ttl),
                )
        self._thread.start()
        return self

    def at_step(self, step: str, resumable: bool = False) -> None:
        """Record the step about to run (``block/id``) and whether it may run again: what
        ``reconcile`` goes by if the run dies in it. The step recorded before it finished."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT step, done FROM recovery_leases WHERE incident_id = ?",
                (self.incident_id,),
            ).fetchone()
            done = _steps(row["done"]) if row is not None else []
            last = row["step"] if row is not None else ""
            if "/" in last and last != step and last not in done:
                done.append(last)
            db.execute(
                "UPDATE recovery_leases SET step = ?, resumable = ?, done = ?, until = ?"
                " WHERE incident_id = ?",
                (step, int(resumable), "\n".join(done), self.clock() + self.ttl, self.incident_id),
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


@dataclass
class Reconciled:
    """What ``reconcile`` found: incidents escalated for a person, and incidents whose lease
    it handed over for another run to take (start one: ``lazarus.incident.interrupted``)."""

    escalated: list[Incident] = field(default_factory=list)
    handed_over: list[Incident] = field(default_factory=list)


def reconcile(
    store: Store, now: float | None = None, ttl: float = LEASE_TTL, spare: int | None = None
) -> Reconciled:
    """Hand over or escalate every incident left ``remediating`` by a run whose lease ran out
    (or that never took one and started longer than ``ttl`` ago); see the module docstring.
    ``spare``: the incident of the recover run calling, which takes a handed-over lease itself
    however late it came."""
    now = time.time() if now is None else now
    found = Reconciled()
    for incident in store.active():
        if incident.state is not IncidentState.REMEDIATING:
            continue
        with store.transaction() as db:
            row = db.execute(
                "SELECT owner, step, until, resumable, takeovers FROM recovery_leases"
                " WHERE incident_id = ?",
                (incident.id,),
            ).fetchone()
            started = incident.action_at or incident.detected_at
            lapsed = row is not None and (row["until"] <= now or gone(row["owner"]))
            if (row is not None and not lapsed) or (row is None and started > now - ttl):
                continue
            if row is not None and row["owner"] == HANDED_OVER and incident.id == spare:
                continue
            step = row["step"] if row is not None else "(unknown: the run took no lease)"
            handing = (
                row is not None
                and row["owner"] != HANDED_OVER
                and bool(row["resumable"])
                and row["takeovers"] < TAKEOVERS
                and (step == BEFORE or step.startswith(_RESUMABLE_BLOCKS))
            )
            if handing:
                db.execute(
                    "UPDATE recovery_leases SET owner = ?, until = ?, takeovers = takeovers + 1"
                    " WHERE incident_id = ?",
                    (HANDED_OVER, now + HANDOVER_WAIT * ttl, incident.id),
                )
            else:
                db.execute("DELETE FROM recovery_leases WHERE incident_id = ?", (incident.id,))
        Guards(store).release(incident.service or incident.host, incident.host)
        target = f"{step}@{incident.host}"
        if handing:
            why = f"interrupted at step {step}, which is safe to repeat: handed to another run"
            store.record_action(incident.id, "reconcile", target, "lazarus", True, why)
            found.handed_over.append(incident)
            continue
        reason = f"interrupted at step {step}: the recover run stopped without finishing"
        if row is not None:
            reason += f" ({_why_not(row)})"
        store.record_action(incident.id, "reconcile", target, "lazarus", False, reason)
        moved = store.transition(
            incident.id, IncidentState.ESCALATED, reason=reason, expect=(IncidentState.REMEDIATING,)
        )
        if moved is not None:
            found.escalated.append(moved)
    return found


def unclaimed(store: Store, ttl: float = LEASE_TTL, now: float | None = None) -> list[Incident]:
    """Active incidents nobody claimed ``UNCLAIMED_WAIT * ttl`` after they opened (the caller
    keeps those automatic recovery should have acted on)."""
    now = time.time() if now is None else now
    waiting = (IncidentState.OPEN, IncidentState.NOTIFIED)
    return [
        i
        for i in store.active()
        if i.state in waiting and i.action_at is None and i.detected_at < now - UNCLAIMED_WAIT * ttl
    ]


def hand_over_unclaimed(store: Store, incidents: list[Incident]) -> list[Incident]:
    """Hand each incident (of ``unclaimed``) to another run, once: its automatic recover run
    died before its claim (a worker killed as it started), so no lease lapses and nothing
    else says so. Recorded in the audit in the same transaction that checks for it, so two
    watches (shards, machines) never both hand it over; returns those handed over now."""
    handed = []
    for incident in incidents:
        target = f"{BEFORE}@{incident.host}"
        with store.transaction() as db:
            if db.execute(
                "SELECT 1 FROM actions WHERE incident_id = ? AND action = 'reconcile'"
                " AND target = ?",
                (incident.id, target),
            ).fetchone():
                continue
            db.execute(
                "INSERT INTO actions (incident_id, action, target, actor, ok, detail, at)"
                " VALUES (?, 'reconcile', ?, 'lazarus', 1, ?, ?)",
                (incident.id, target, "no recover run claimed it: handed to another run",
                 time.time()),
            )  # fmt: skip
        handed.append(incident)
    return handed


def awaits_taker(store: Store, incident_id: int) -> bool:
    """Whether the incident's recovery was handed over and no run has taken it yet."""
    with store.transaction() as db:
        row = db.execute(
            "SELECT 1 FROM recovery_leases WHERE incident_id = ? AND owner = ?",
            (incident_id, HANDED_OVER),
        ).fetchone()
    return row is not None


def take_over(
    store: Store, incident_id: int, owner: str, ttl: float = LEASE_TTL
) -> list[str] | None:
    """Take a handed-over lease for ``owner``: the steps (``block/id``) its dead run finished,
    which this run skips; None when no lease waits (exactly one caller gets it)."""
    with store.transaction() as db:
        row = db.execute(
            "SELECT done FROM recovery_leases WHERE incident_id = ? AND owner = ?",
            (incident_id, HANDED_OVER),
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE recovery_leases SET owner = ?, until = ? WHERE incident_id = ?",
            (owner, time.time() + ttl, incident_id),
        )
    return _steps(row["done"])


def _why_not(row: object) -> str:
    """Why a lapsed lease goes to a person rather than to another run."""
    if row["owner"] == HANDED_OVER:  # type: ignore[index]
        return "no run took it over"
    if row["takeovers"] >= TAKEOVERS:  # type: ignore[index]
        return "it was taken over once already: a person decides"
    if not row["resumable"]:  # type: ignore[index]
        return "the step is not safe to repeat: a person decides"
    return "it stopped while undoing a failed step: a person decides"


def _steps(text: str) -> list[str]:
    return [s for s in text.split("\n") if s]
