"""Page that Lazarus itself stopped (lazarus.notify.deadman): run by the proactive automation
``lazarus deploy`` creates when no watch run completed for ``watch.dead_after`` intervals and
a run's start-up allowance (lazarus.notify.deadman.deployed_silence). It
runs on the pool's worker: a dead worker is what ``watch.heartbeat`` and an outside checker
are for."""

from __future__ import annotations

from prefect import flow, get_run_logger

from lazarus.notify.deadman import deployed_silence, page
from tasks.runtime import load


@flow(name="deadman", log_prints=True)
def deadman(config_path: str = "lazarus.yaml") -> bool:
    """Send the dead-man's page; True when a receiver took it."""
    config = load(config_path)
    silent = deployed_silence(config.watch)
    sent = page(config, silent)
    for outcome in sent:
        get_run_logger().info("dead-man page to %s: %s", outcome.receiver, outcome.error or "ok")
    return any(o.ok for o in sent)
