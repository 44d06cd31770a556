"""The heartbeat task: the last stage of a completed watch cycle (lazarus.sources.heartbeat)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.sources.heartbeat import beat


@task(name="heartbeat", cache_policy=NO_CACHE)
def send_heartbeat(config: Config) -> bool:
    """Ping ``watch.heartbeat`` if one is configured; an outside checker pages when it stops."""
    if not config.watch.heartbeat:
        return False
    return beat(config.watch.heartbeat, timeout=min(10.0, config.watch.interval))
