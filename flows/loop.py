"""The watch as a long-lived loop: cycles on the interval in one warm process.

Why this shape (Prefect 3.9): a flow run per cycle costs a process start and ~1 s of API
round trips, which made a 5 s watch run every ~10 s and filled the runs list with ~17,000 runs
a day. Here one ``watch-loop`` flow run covers a bounded stretch (an hour by default) and each
cycle's stages are task runs inside it, so the UI lists ~24 watch runs a day; the recover runs
a cycle starts are child flow runs, so incidents and recoveries are what stands out; they run
beside the cycles (flows.watch.Recoveries), so the next cycles go on probing meanwhile. The
stretch is bounded so a run's logs and task list stay readable and a config change or a new
Prefect version is picked up at the next stretch at the latest (the config file is reloaded
as soon as it changes). Every cycle takes the shard's lease first (tasks.cycles): a cycle that
is due while another watch runs is skipped and logged, whoever started that one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.exceptions import MissingContextError

from flows.watch import Recoveries, cycle, shard_key, take_over_interrupted
from lazarus.config import Config
from lazarus.cycles import LeaseLost, Skipped, holder_id
from lazarus.notify.deadman import Watchdog
from lazarus.remote.pool import shared_executor
from lazarus.sources.probes import check_all, instances
from lazarus.store import Store
from tasks.cycles import watch_cycle
from tasks.runtime import load, open_store

STRETCH = 3600.0
WATCHDOG = Watchdog()  # one per process: its rate limit spans stretches


@dataclass
class LoopReport:
    """What a stretch of the loop did: cycle numbers it ran, how many it skipped, ran late or lost,
    and when (``time.monotonic``) its first tick was: the others follow every interval."""

    cycles: list[int] = field(default_factory=list)
    skipped: int = 0
    late: int = 0
    failed: int = 0
    started: float = 0.0


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger, or the module's when a drill runs the loop outside any flow run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


class _Config:
    """The config, reloaded when its file changes (a broken edit keeps the last good one)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.mtime = self.path.stat().st_mtime
        self.config = load(path)

    def current(self) -> Config:
        mtime = self.path.stat().st_mtime
        if mtime != self.mtime:
            self.mtime = mtime
            try:
                self.config = load(self.path)
                _logger().info("config %s changed: reloaded", self.path)
            except Exception as exc:  # a half-saved edit must not stop the watch
                _logger().error("config %s changed but does not load: %s", self.path, exc)
        return self.config


def run_cycles(
    config_path: str,
    *,
    until: Callable[[LoopReport], bool],
    interval: float | None = None,
    shard: int = 0,
    shards: int = 1,
    remediate: bool = True,
) -> LoopReport:
    """Run a cycle every ``interval`` (the config's by default) until ``until(report)`` says
    so. Ticks are fixed: a cycle that overruns makes the missed ticks late, not queued."""
    logger = _logger()
    source = _Config(config_path)
    key = shard_key(shard, shards)
    holder = holder_id()
    report = LoopReport()
    store: Store | None = None
    recoveries = Recoveries()  # recover runs go on beside the cycles
    try:
        start = report.started = time.monotonic()
        tick = 0
        while not until(report):
            config = source.current()
            every = interval if interval is not None else config.watch.interval
            try:
                store = store or open_store(config)  # here: a full disk may refuse even that
                with watch_cycle(store, key, holder, interval=every) as got:
                    if not isinstance(got, Skipped):
                        take_over_interrupted(config, config_path, store, remediate, recoveries)
                        counts = cycle(
                            config, config_path, got.number, shard, shards, remediate, recoveries,
                            got.check,
                        )  # fmt: skip
                        report.cycles.append(got.number)
                        _log_cycle(key, counts)
                WATCHDOG.completed()
            except LeaseLost as exc:  # another watch has the shard: not a failure to page
                got = None
                report.skipped += 1
                logger.warning("watch %s: %s", key, exc)
            except Exception as exc:  # logged and paged: the next tick tries again
                got = None
                report.failed += 1
                logger.exception("watch %s: the cycle failed: %s", key, exc)
                for sent in WATCHDOG.failed(config, exc, probe=partial(_failing, config)):
                    logger.error("watch %s: page to %s: %s", key, sent.receiver, sent.error or "ok")
            if isinstance(got, Skipped) and 0 < got.wait < every:
                # another starter's cycle just began, or its lease lapses before our next tick
                # (its holder stopped renewing: died): ours follows at once
                time.sleep(got.wait + 0.05)
                continue
            if isinstance(got, Skipped):
                report.skipped += 1
                logger.info("watch %s: a due cycle is skipped: %s", key, got.reason)
            due = tick + 1
            tick = max(due, int((time.monotonic() - start) / every))
            if tick > due:
                report.late += tick - due
                logger.warning("watch %s: cycle overran; %d due cycle(s) skipped", key, tick - due)
            if not until(report):
                time.sleep(max(0.0, start + tick * every - time.monotonic()))
        recoveries.close()  # the stretch ends when its recover runs did
    except KeyboardInterrupt:  # a person stops it: its recover runs get a grace, not their bound
        recoveries.stop()
        raise
    finally:
        if store is not None:
            store.close()
    return report


def _failing(config: Config) -> list[str]:
    """What the probes find failing now, without the store: for the watchdog's page."""
    executor = shared_executor(config.inventory.ssh, config.base_dir)
    found = check_all(instances(config.inventory), executor=executor)
    return [f"{o.target}: {o.detail}" for o in found if not o.ok]


def _log_cycle(key: str, counts: dict[str, int]) -> None:
    """One line per cycle; louder when something opened, resolved or escalated."""
    logger = _logger()
    line = f"watch {key} cycle {counts['cycle']}: " + ", ".join(
        f"{k} {v}" for k, v in counts.items() if k != "cycle"
    )
    eventful = counts["opened"] or counts["closed"] or counts["escalated"]
    logger.warning(line) if eventful else logger.info(line)


@flow(name="watch-loop", log_prints=True)
def watch_loop(
    config_path: str = "lazarus.yaml",
    shard: int = 0,
    shards: int = 1,
    remediate: bool = True,
    stretch: float = STRETCH,
) -> dict[str, int]:
    """Watch on the config's interval for ``stretch`` seconds in this process, then return (the
    caller starts the next stretch); returns how many cycles ran, were skipped or came late."""
    end = time.monotonic() + stretch
    report = run_cycles(
        config_path,
        until=lambda _: time.monotonic() >= end,
        shard=shard,
        shards=shards,
        remediate=remediate,
    )
    return {
        "cycles": len(report.cycles),
        "skipped": report.skipped,
        "late": report.late,
        "failed": report.failed,
    }


@flow(name="watch-loop", flow_run_name="watch-loop until done", log_prints=True)
def watch_until(
    config_path: str, until: Callable[[LoopReport], bool], interval: float | None = None
) -> LoopReport:
    """The same loop, until ``until(report)`` says so: a drill stops it when its incident ends."""
    return run_cycles(config_path, until=until, interval=interval)
