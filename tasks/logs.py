"""Logs: tail every configured log file, then turn new and spiking error templates into anomalies.

One task per stage, whatever the number of files: the core reads hosts side by side.
"""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.diagnose.inputs import remember_lines
from lazarus.logcollect import (
    LogBatch,
    collect,
    error_spikes,
    feed,
    new_error_anomalies,
    signals_path,
)
from lazarus.logmine import LogSignals, state
from lazarus.model import Anomaly
from tasks.runtime import open_store


@task(name="collect-logs", cache_policy=NO_CACHE)
def collect_logs(config: Config) -> LogBatch:
    """New lines of every configured file; a file that fails is logged and recorded, not fatal."""
    if not config.logs.files and not config.logs.journals:
        return LogBatch(time.time(), [])
    store = open_store(config)
    try:
        batch = collect(config, store)
        remember_lines(store, batch)  # for the recover flow's diagnosis, maybe in another process
    finally:
        store.close()
    logger = get_run_logger()
    for f in batch.errors:
        logger.warning("log %s on %s not read: %s", f.path, f.host or "-", f.error)
    for f in batch.files:
        if f.restarted:
            logger.warning("log %s on %s: %s", f.path, f.host, f.restarted)
    behind = [f"{f.path}@{f.host}" for f in batch.files if f.behind]
    logger.info(
        "read %d lines (%d bytes, %d cut) from %d files%s",
        sum(len(f.lines) for f in batch.files),
        sum(f.read for f in batch.files),
        sum(f.cut for f in batch.files),
        len(batch.files),
        f"; budget spent, still behind: {', '.join(behind)}" if behind else "",
    )
    return batch


@task(name="log-anomalies", cache_policy=NO_CACHE)
def log_anomalies(config: Config, batch: LogBatch) -> list[Anomaly]:
    """Feed the batch to the log signals kept between cycles; new error templates and error
    templates whose rate spiked -> anomalies (every cycle: a bucket completes without lines too)."""
    if not batch.files:
        return []
    path = signals_path(config)
    signals = state.load(LogSignals, path)
    signals.warmup_s = config.logs.warmup
    feed(signals, batch)
    anomalies = new_error_anomalies(signals, batch)
    state.save(signals, path)
    anomalies += _error_spikes(config, signals, batch)
    for anomaly in anomalies:
        get_run_logger().warning("anomaly %s: %s", anomaly.fingerprint, anomaly.summary)
    return anomalies


def _error_spikes(config: Config, signals: LogSignals, batch: LogBatch) -> list[Anomaly]:
    """Spike detection, fenced: a fault in it is logged and must not cost the other verdicts."""
    store = open_store(config)
    try:
        return error_spikes(signals, batch, store, config)
    except Exception:
        get_run_logger().exception("log error-rate detection failed this cycle")
        return []
    finally:
        store.close()
