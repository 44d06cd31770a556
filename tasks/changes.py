"""Changes: what the watch can see people change (release links, watched files), recorded in
the store each cycle so the recover flow's diagnosis can rank ``bad_release``."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus import changes
from lazarus.config import Config
from lazarus.remote.pool import shared_executor
from tasks.runtime import open_store


@task(name="record-changes", cache_policy=NO_CACHE)
def record_changes(config: Config) -> int:
    """Read every watched release link and file; store what changed. Returns how many did."""
    if not changes.watched(config):
        return 0
    executor = shared_executor(config.inventory.ssh, config.base_dir)  # warm connections
    store = open_store(config)
    try:
        timeout = config.inventory.ssh.command_timeout
        seen = changes.observe(executor, config, timeout, known=changes.last_seen(store))
        new = changes.record(store, seen)
    finally:
        store.close()
    for change in new:
        get_run_logger().info("change: %s", change.description)
    return len(new)
