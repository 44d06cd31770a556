"""Database actions, calling lazarus.snapshots: snapshot, restore that cannot regress, the
checks as a verify step, ending stuck transactions and seeing the blocked sessions move."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from lazarus import snapshots
from lazarus.config import Database, Duration, StuckLimits
from lazarus.errors import LazarusError
from lazarus.playbooks.actions import Action, InventoryRef, Params, StepResult, register
from lazarus.playbooks.context import StepContext


class DbParams(Params):
    database: InventoryRef


class SnapshotParams(DbParams):
    reason: Literal["scheduled", "damaged"] = "damaged"  # taken during an incident: damaged


def snapshot_dir(ctx: StepContext, db: Database) -> Path:
    assert ctx.config is not None  # ctx.database() already failed without a config
    return ctx.config.path(db.snapshots.dir)


@register
class DbSnapshot(Action):
    """Keep the current state; during an incident it is ``damaged`` and never a restore candidate
    (``scheduled`` snapshots are verified on a scratch copy at once)."""

    name = "db.snapshot"
    acts = False  # a copy; the target is unchanged
    Params = SnapshotParams

    def describe(self, ctx: StepContext, params: SnapshotParams) -> tuple[str, list[str]]:
        db = ctx.database(params.database)
        return (params.database, ["snapshot", db.kind, params.reason, str(snapshot_dir(ctx, db))])

    def run(self, ctx: StepContext, params: SnapshotParams) -> StepResult:
        db = ctx.database(params.database)
        if params.reason == "scheduled":
            snap = snapshots.take(db, snapshot_dir(ctx, db))
        else:
            snap = snapshots.snapshot(db, snapshot_dir(ctx, db), reason=params.reason)
        ctx.memory.setdefault("taken", set()).add(snap.path)
        return StepResult(
            f"{params.reason} snapshot {snap.path.name} ({snap.size} bytes)",
            {"path": str(snap.path), "row_counts": snap.row_counts},
        )


@register
class DbRestore(Action):
    """Walk back from the newest snapshot marked good until one passes the checks on a scratch
    copy; only that one replaces the live database (see snapshots.restore_newest_good)."""

    name = "db.restore"
    Params = DbParams
    destructive = True

    def describe(self, ctx: StepContext, params: DbParams) -> tuple[str, list[str]]:
        db = ctx.database(params.database)
        return (
            params.database,
            [
                "restore",
                db.kind,
                "newest good snapshot that passes its checks",
                str(snapshot_dir(ctx, db)),
            ],
        )

    def run(self, ctx: StepContext, params: DbParams) -> StepResult:
        db = ctx.database(params.database)
        exclude = ctx.memory.get("taken", set())
        try:
            report = snapshots.restore_newest_good(db, snapshot_dir(ctx, db), exclude=exclude)
        except LazarusError as exc:
            raise ctx.fail(str(exc)) from exc
        refused = f" after refusing {len(report.tried)}" if report.tried else ""
        return StepResult(
            f"restored {db.name} from {report.snapshot.name}{refused}",
            {
                "row_counts_after": report.row_counts_after,
                "safety_snapshot": str(report.safety_snapshot),
                "tried": report.tried,
            },
        )


class CheckParams(DbParams):
    within: Duration = 30.0
    interval: Duration = 1.0


@register
class DbChecksPass(Action):
    """The database's checks pass on the live data: the verify step of data recovery. Change
    limits are left out (their baseline is the damaged run); a check that errors fails."""

    acts = False  # reads only: not counted by the circuit breaker
    name = "db.check"
    Params = CheckParams

    def run(self, ctx: StepContext, params: CheckParams) -> StepResult:
        db = ctx.database(params.database)
        if not db.checks and db.check is None:
            raise ctx.fail(f"database {db.name!r} has no checks to verify with")

        def problem() -> str:
            bad = [r for r in snapshots.run_checks(db, db.checks) if not r.ok]
            return "; ".join(r.summary() for r in bad)

        poll(ctx, params, problem)
        return StepResult(f"{len(db.checks)} check(s) of {db.name} pass on the live data")


def poll(ctx: StepContext, params: CheckParams, problem: Callable[[], str]) -> None:
    """Ask ``problem`` every ``interval`` until it answers '' or ``within`` has passed (then
    fail with its last answer); bounded by the number of attempts, not only the clock."""
    deadline = ctx.clock() + params.within
    last = ""
    for _ in range(1 + int(params.within / max(params.interval, 0.001))):
        last = problem()
        if not last:
            return
        if ctx.clock() + params.interval > deadline:
            break
        ctx.sleep(params.interval)
    raise ctx.fail(last)


def _postgres(ctx: StepContext, name: str, action: str) -> Database:
    db = ctx.database(name)
    if db.kind != "postgres":
        raise ctx.fail(f"{action} is for PostgreSQL databases; {name!r} is {db.kind}")
    return db


class StuckParams(DbParams):
    """Limits default to the database's ``stuck`` settings (else 5 min idle, 1 min blocking)."""

    idle_in_transaction_for: Duration | None = None
    blocking_for: Duration | None = None


@register
class DbRollbackStuck(Action):
    name = "db.rollback_stuck"
    Params = StuckParams

    def run(self, ctx: StepContext, params: StuckParams) -> StepResult:
        db = _postgres(ctx, params.database, self.name)
        limits = db.stuck or StuckLimits()
        ended = snapshots.end_stuck_transactions(
            db.dsn,
            idle_in_transaction_for=params.idle_in_transaction_for or limits.idle_in_transaction,
            blocking_for=params.blocking_for or limits.blocking,
        )
        return StepResult(f"ended {len(ended)} stuck sessions", {"ended": len(ended)})


@register
class DbBlockedCleared(Action):
    """No session of the database waits on a lock any more: the blocked writers moved."""

    acts = False  # reads only: not counted by the circuit breaker
    name = "db.blocked_cleared"
    Params = CheckParams

    def run(self, ctx: StepContext, params: CheckParams) -> StepResult:
        db = _postgres(ctx, params.database, self.name)

        def problem() -> str:
            waiting = snapshots.postgres.blocked_sessions(db)
            return f"{waiting} session(s) of {db.name} still wait on a lock" if waiting else ""

        poll(ctx, params, problem)
        return StepResult(f"no session of {db.name} waits on a lock")
