"""Point-in-time actions: restore to just before the damage, and fault-interval recovery.

Both need WAL archiving (``databases[].pitr``) and refuse in one line without it. The moment
and the interval default to what the incident's own check recorded: ``good_at`` (the last
time the checks passed) and ``bad_at`` (the first time one failed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lazarus.errors import LazarusError
from lazarus.playbooks.actions import Action, StepResult, register
from lazarus.playbooks.actions.db import DbParams, snapshot_dir
from lazarus.playbooks.context import StepContext
from lazarus.snapshots import interval, pointintime
from lazarus.snapshots.sidecopy import refuse_without_pitr

_KEYS_SHOWN = 20


def moment(ctx: StepContext, text: str, label: str) -> datetime:
    """``text`` (epoch seconds or ISO 8601 with a zone), else the incident's ``label``."""
    raw = text or ctx.incident.labels.get(label, "")
    if not raw:
        raise ctx.fail(f"no time given and the incident has no {label!r} label")
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ctx.fail(f"{raw!r} is neither epoch seconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ctx.fail(f"{raw!r} has no time zone; write it as 2026-01-02T03:04:05+00:00")
    return when


class PointParams(DbParams):
    at: str = ""  # default: the incident's good_at


@register
class DbPointInTime(Action):
    """Replace the database with its state just before the first bad sample."""

    name = "db.pitr"
    Params = PointParams
    destructive = True

    def run(self, ctx: StepContext, params: PointParams) -> StepResult:
        db = ctx.database(params.database)
        refuse_without_pitr(db, ctx.step_id)
        at = moment(ctx, params.at, "good_at")
        try:
            report = pointintime.restore_to_point(db, at, snapshot_dir(ctx, db))
        except LazarusError as exc:
            raise ctx.fail(str(exc)) from exc
        return StepResult(report.summary(), {"rows_kept": report.rows_kept})


class IntervalParams(DbParams):
    start: str = ""  # default: the incident's good_at
    end: str = ""  # default: the incident's bad_at


@register
class DbIntervalDiff(Action):
    """Compare the tables at the interval's start and end with live; save what to re-apply.
    Changes nothing: its counts are what the approval of db.interval_apply shows."""

    acts = False  # reads only: not counted by the circuit breaker
    name = "db.interval_diff"
    Params = IntervalParams

    def run(self, ctx: StepContext, params: IntervalParams) -> StepResult:
        db = ctx.database(params.database)
        refuse_without_pitr(db, ctx.step_id)
        start, end = moment(ctx, params.start, "good_at"), moment(ctx, params.end, "bad_at")
        folder = snapshot_dir(ctx, db) / f"interval-{ctx.incident.id}-{start:%Y%m%dT%H%M%S}"
        try:
            plan = interval.plan_interval(db, start, end, folder)
        except LazarusError as exc:
            raise ctx.fail(str(exc)) from exc
        ctx.memory["interval"] = plan.folder
        return StepResult(f"would {plan.summary()}", {"counts": plan.counts()})


@register
class DbIntervalApply(Action):
    """Re-apply, in one transaction, the rows the interval deleted or changed; conflicts are
    listed and left alone. The audit keeps every key changed."""

    name = "db.interval_apply"
    Params = DbParams
    destructive = True

    def describe(self, ctx: StepContext, params: DbParams) -> tuple[str, list[str]]:
        folder = ctx.memory.get("interval")
        if folder is None:
            return (params.database, ["re-apply", "the rows db.interval_diff finds"])
        return (params.database, ["re-apply", interval.load_plan(Path(folder)).summary()])

    def run(self, ctx: StepContext, params: DbParams) -> StepResult:
        db = ctx.database(params.database)
        folder = ctx.memory.get("interval")
        if folder is None:
            raise ctx.fail("no interval plan in this run: db.interval_diff must come first")
        try:
            done = interval.apply_interval(db, interval.load_plan(Path(folder)))
        except LazarusError as exc:
            raise ctx.fail(str(exc)) from exc
        keys = interval.keys_file(done)
        shown = "; ".join(
            f"{t.table}: inserted {_keys(t.inserts)}, updated {_keys(t.updates)},"
            f" conflicts left alone {_keys(t.conflicts)}"
            for t in done.tables
        )
        return StepResult(
            f"{done.summary()}; keys: {shown}; all keys in {keys}",
            {"counts": done.counts(), "keys_file": str(keys)},
        )


def _keys(keys: list[list[str]]) -> str:
    text = ",".join("/".join(k) for k in keys[:_KEYS_SHOWN])
    more = f" and {len(keys) - _KEYS_SHOWN} more" if len(keys) > _KEYS_SHOWN else ""
    return f"{len(keys)} [{text}{more}]"
