"""Snapshots on a schedule: take, verify on a scratch copy, apply retention."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus import snapshots
from lazarus.config import Config, Database


@task(name="take-snapshot", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def take_snapshot(config: Config, db: Database) -> str:
    """One verified snapshot of ``db``, then retention; returns its verdict."""
    folder = config.path(db.snapshots.dir)
    snap = snapshots.take(db, folder)
    logger = get_run_logger()
    log = logger.info if snap.verdict == "good" else logger.error
    log("%s: %s %s: %s", db.name, snap.path.name, snap.verdict, snap.verdict_detail)
    keep = db.snapshots
    removed = snapshots.prune(folder, db.name, keep.keep, daily=keep.daily, weekly=keep.weekly)
    if removed:
        logger.info("%s: retention removed %d file(s)", db.name, len(removed))
    return snap.verdict or "unverified"
