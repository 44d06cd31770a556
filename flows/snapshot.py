"""Snapshot the databases: each one taken, verified on a scratch copy (sidecar good/bad) and
pruned. ``lazarus deploy`` schedules one deployment per database on its ``snapshots.schedule``.
"""

from __future__ import annotations

from prefect import flow

from lazarus.commands.snapshot import selected
from tasks.runtime import load
from tasks.snapshots import take_snapshot


@flow(name="snapshot", log_prints=True)
def snapshot(config_path: str = "lazarus.yaml", database: str = "") -> dict[str, str]:
    """Snapshot ``database`` (or every database); returns each one's verdict."""
    config = load(config_path)
    return {db.name: take_snapshot(config, db) for db in selected(config, database or None)}
