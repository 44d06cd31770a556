"""Safety limits kept in the store, each check-and-take in one write transaction.

* circuit breaker per (target, playbook): at most ``max`` acting tries (restarts, rollbacks,
  clean-ups: every try of a step whose action ``acts``, retries inside a run included)
  ``within`` a window, so "at most 3" means 3 restarts, however the runs retried them;
* fleet cap: at most K hosts of a service remediating at once (a lease, always released; a run
  waits a bounded time for a free slot; a lease older than ``LEASE_STALE`` is a crashed run's
  and is dropped);
* error rate: a playbook's automatic runs stop while its recent failure rate is too high.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from lazarus.config import ErrorRate, PlaybookSettings, RunWindow
from lazarus.errors import Throttled
from lazarus.playbooks.actions import StepResult
from lazarus.playbooks.context import StepContext
from lazarus.playbooks.engine import Hooks, PlaybookResult, run
from lazarus.playbooks.schema import Playbook, StepBase
from lazarus.store import Store

LEASE_STALE = 3600.0
LEASE_POLL = 1.0


class Guards:
    """The three limits over one Store; ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store, self.clock, self.sleep = store, clock, sleep

    def start_run(self, target: str, playbook: str, window: RunWindow, rate: ErrorRate) -> int:
        """Record a run, or raise Throttled if the breaker is open or the error rate too high."""
        now = self.clock()
        with self.store.transaction() as db:
            _check_breaker(db, target, playbook, window, now)
            runs, failed = db.execute(
                "SELECT COUNT(ok), COALESCE(SUM(CASE WHEN ok = 0 THEN 1 ELSE 0 END), 0)"
                " FROM playbook_runs WHERE playbook=? AND at>?",
                (playbook, now - rate.within),
            ).fetchone()
            if runs >= rate.min_runs and failed / runs > rate.max:
                raise Throttled(
                    f"{playbook}: {failed} of {runs} runs failed within {rate.within:g}s;"
                    " automatic runs stop until the rate falls"
                )
            cur = db.execute(
                "INSERT INTO playbook_runs (target, playbook, at) VALUES (?,?,?)",
                (target, playbook, now),
            )
            return int(cur.lastrowid or 0)

    def take_act(self, target: str, playbook: str, window: RunWindow, action: str) -> None:
        """Count one acting try against the breaker, or raise Throttled when none is left."""
        now = self.clock()
        with self.store.transaction() as db:
            _check_breaker(db, target, playbook, window, now)
            db.execute(
                "INSERT INTO breaker_acts (target, playbook, action, at) VALUES (?,?,?,?)",
                (target, playbook, action, now),
            )

    def finish_run(self, run_id: int, ok: bool) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE playbook_runs SET ok=? WHERE rowid=?", (int(ok), run_id))

    def reset_breaker(self, target: str, playbook: str) -> int:
        """Stop counting the acting tries of (target, playbook): a person closed the breaker.
        Returns how many were forgotten; the runs stay for the error rate."""
        with self.store.transaction() as db:
            return db.execute(
                "UPDATE breaker_acts SET counted=0 WHERE target=? AND playbook=? AND counted=1",
                (target, playbook),
            ).rowcount

    def _take(self, service: str, host: str, cap: int) -> int:
        """Take a slot and return 0, or return how many are held when none is free."""
        now = self.clock()
        with self.store.transaction() as db:
            db.execute("DELETE FROM fleet_leases WHERE at < ?", (now - LEASE_STALE,))
            (held,) = db.execute(
                "SELECT COUNT(*) FROM fleet_leases WHERE service=?", (service,)
            ).fetchone()
            if held >= cap:
                return int(held)
            db.execute(
                "INSERT INTO fleet_leases (service, host, at) VALUES (?,?,?)", (service, host, now)
            )
            return 0

    @contextmanager
    def fleet_lease(self, service: str, host: str, cap: int, wait: float = 0.0) -> Iterator[None]:
        """Hold one of ``cap`` remediation slots of ``service``, waiting up to ``wait`` seconds
        for one; released even on failure. Raises Throttled when none came free in time."""
        deadline = self.clock() + wait
        for _ in range(int(wait / LEASE_POLL) + 1):
            held = self._take(service, host, cap)
            if not held or self.clock() + LEASE_POLL > deadline:
                break
            self.sleep(LEASE_POLL)
        if held:
            raise Throttled(
                f"fleet cap: {held} of {service}'s hosts already remediating (waited {wait:g}s)"
            )
        try:
            yield
        finally:
            self.release(service, host)

    def release(self, service: str, host: str) -> None:
        """Free the slot ``host`` holds for ``service`` (also a crashed run's: leases.reconcile)."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM fleet_leases WHERE service=? AND host=?", (service, host))


def _check_breaker(db, target: str, playbook: str, window: RunWindow, now: float) -> None:
    (count,) = db.execute(
        "SELECT COUNT(*) FROM breaker_acts WHERE target=? AND playbook=? AND at>? AND counted=1",
        (target, playbook, now - window.within),
    ).fetchone()
    if count >= window.max:
        raise Throttled(
            f"breaker open for {playbook} on {target}: {count} restarts within "
            f"{window.within:g}s (reset: lazarus playbook reset-breaker)"
        )


def _counting(
    guards: Guards, target: str, book: Playbook, window: RunWindow, hooks: Hooks
) -> Hooks:
    """The hooks with every try of an acting step counted against the breaker first."""
    inner = hooks.step_runner

    def counted(step: StepBase, call: Callable[[], StepResult]) -> StepResult:
        if step.impl.acts:
            guards.take_act(target, book.name, window, step.action)
        return inner(step, call) if inner else call()

    return replace(hooks, step_runner=counted)


def run_guarded(
    guards: Guards, book: Playbook, ctx: StepContext, hooks: Hooks | None = None
) -> PlaybookResult:
    """``engine.run`` inside every limit: breaker and error rate, then a fleet-cap lease.

    Raises Throttled (before anything runs) when a limit says no; the outcome is counted.
    """
    settings = ctx.settings or PlaybookSettings()
    inc = ctx.incident
    window = book.limits.per_target or settings.per_target
    run_id = guards.start_run(inc.target, book.name, window, settings.error_rate)
    fleet = 1
    if ctx.config is not None and inc.service:
        services = [s for s in ctx.config.inventory.services if s.name == inc.service]
        fleet = len(ctx.config.inventory.hosts_of(services[0])) if services else 1
    cap = settings.cap_for(fleet)
    if book.limits.fleet_max_percent is not None:
        cap = min(cap, max(1, int(fleet * book.limits.fleet_max_percent / 100)))
    result: PlaybookResult | None = None
    try:
        with guards.fleet_lease(inc.service or inc.host, inc.host, cap, settings.fleet_wait):
            result = run(book, ctx, _counting(guards, inc.target, book, window, hooks or Hooks()))
    finally:
        guards.finish_run(run_id, result is not None and result.status == "resolved")
    assert result is not None  # run() returned, or the exception propagated above
    return result
