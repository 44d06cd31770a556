"""Database actions, calling lazarus.snapshots (whole-database snapshot and restore)."""

from __future__ import annotations

from pathlib import Path

from lazarus import snapshots
from lazarus.config import Database, Duration
from lazarus.errors import ActionError
from lazarus.playbooks.actions import Action, InventoryRef, Params, StepResult, register
from lazarus.playbooks.context import StepContext


class DbParams(Params):
    database: InventoryRef


def _dir(ctx: StepContext, db: Database) -> Path:
    assert ctx.config is not None  # ctx.database() already failed without a config
    return ctx.config.path(db.snapshots.dir)


@register
class DbSnapshot(Action):
    name = "db.snapshot"
    Params = DbParams

    def describe(self, ctx: StepContext, params: DbParams) -> tuple[str, list[str]]:
        db = ctx.database(params.database)
        return (params.database, ["snapshot", db.kind, str(_dir(ctx, db))])

    def run(self, ctx: StepContext, params: DbParams) -> StepResult:
        db = ctx.database(params.database)
        snap = snapshots.snapshot(db, _dir(ctx, db))
        ctx.memory.setdefault("taken", set()).add(snap.path)
        return StepResult(
            f"snapshot {snap.path.name} ({snap.size} bytes)",
            {"path": str(snap.path), "row_counts": snap.row_counts},
        )


@register
class DbRestore(Action):
    """Replace the whole database with its newest good snapshot taken before this run."""

    name = "db.restore"
    Params = DbParams
    destructive = True

    def describe(self, ctx: StepContext, params: DbParams) -> tuple[str, list[str]]:
        db = ctx.database(params.database)
        return (
            params.database,
            ["restore", db.kind, "newest good snapshot in", str(_dir(ctx, db))],
        )

    def run(self, ctx: StepContext, params: DbParams) -> StepResult:
        db = ctx.database(params.database)
        taken = ctx.memory.get("taken", set())
        for snap in snapshots.list_snapshots(_dir(ctx, db), db.name):
            if snap.path in taken or snap.reason != "scheduled":
                continue
            try:
                snapshots.verify(snap)
            except ActionError:
                continue  # damaged: try the next older one
            report = snapshots.restore(db, snap)
            return StepResult(
                f"restored {db.name} from {snap.path.name}",
                {
                    "row_counts_after": report.row_counts_after,
                    "safety_snapshot": str(report.safety_snapshot),
                },
            )
        raise ctx.fail(f"no good snapshot of {db.name!r} older than this run")


class StuckParams(DbParams):
    idle_in_transaction_for: Duration = 300.0
    blocking_for: Duration = 60.0


@register
class DbRollbackStuck(Action):
    name = "db.rollback_stuck"
    Params = StuckParams

    def run(self, ctx: StepContext, params: StuckParams) -> StepResult:
        db = ctx.database(params.database)
        if db.kind != "postgres":
            raise ctx.fail("db.rollback_stuck is for PostgreSQL databases")
        ended = snapshots.end_stuck_transactions(
            db.dsn,
            idle_in_transaction_for=params.idle_in_transaction_for,
            blocking_for=params.blocking_for,
        )
        return StepResult(f"ended {len(ended)} stuck sessions", {"ended": len(ended)})
