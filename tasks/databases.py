"""Databases: run the due checks and look for stuck sessions, once per cycle."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.dbwatch import watch_databases
from lazarus.model import Anomaly
from tasks.runtime import open_store


@task(name="check-databases", cache_policy=NO_CACHE)
def check_databases(config: Config) -> list[Anomaly]:
    """``db_corrupt`` and ``db_stuck_transaction`` verdicts; a check that could not run is
    logged as a failed check with its error and raises nothing by itself."""
    if not config.inventory.databases:
        return []
    store = open_store(config)
    try:
        seen = watch_databases(config, store, time.time())
    finally:
        store.close()
    logger = get_run_logger()
    for result in seen.failed_checks:
        logger.warning("failed check (not taken for damage): %s", result.summary())
    for error in seen.errors:
        logger.warning("%s", error)
    return seen.anomalies
