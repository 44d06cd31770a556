"""The dead-man's page: sent when the watch itself has stopped or cannot work, so it depends on
nothing the watch needs. It reads only the config and goes straight through apprise to the root
receiver (and the fallback): no store, no grouping state, no SSH, no sources.

Two callers: ``flows/deadman.py`` (a Prefect automation saw no completed watch run for
``watch.dead_after`` intervals) and ``Watchdog`` in the watch loop itself (its cycles fail: the
store cannot be written, say, because its disk is full).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from lazarus.config import Config, Watch
from lazarus.db import StoreUnavailable
from lazarus.detect.sources import redact
from lazarus.notify.deliver import Delivery, deliver

REPAGE_DEFAULT = 4 * 3600.0  # Alertmanager's repeat_interval, when no route sets one


def deployed_silence(watch: Watch) -> float:
    """How long the dead-man automation waits for a completed watch deployment run before it
    pages: ``dead_after`` intervals beyond the slowest healthy run, ``watch.startup`` (the
    worker's poll for scheduled runs, 10 s by default; a process start, 4-8 s on a loaded 2-core
    machine; the config load and the cycle). A run that comes due while one runs is cancelled,
    not queued, so one slow run skips a completion with nothing wrong: the bare
    ``dead_after * interval`` paged every 20 s at a 2 s interval while the watch was fine.
    (``lazarus serve``'s own watchdog counts failed cycles instead: no process starts there.)"""
    return watch.dead_after * watch.interval + watch.startup


def receivers(config: Config) -> list[str]:
    """Who hears it: the root route's receiver and the fallback (else the first receiver)."""
    notify = config.notify
    names = [notify.route.receiver] if notify.route and notify.route.receiver else []
    names += [notify.fallback] if notify.fallback else []
    if not names and notify.receivers:
        names = [notify.receivers[0].name]
    return list(dict.fromkeys(names))


def page(config: Config, silent_for: float) -> list[Delivery]:
    """Tell the on-call that no watch cycle completed for ``silent_for`` seconds."""
    title = f"[CRITICAL] Lazarus is not watching: no completed cycle for {silent_for:.0f}s"
    body = (
        f"**Lazarus has not completed a watch cycle for {silent_for:.0f} s** "
        f"(`watch.dead_after` {config.watch.dead_after}, interval {config.watch.interval:g} s)."
        " Failures are "
        "neither detected nor healed until it runs again. Check the watch flow runs in the "
        "Prefect UI, the work pool's worker, and the state disk (`lazarus check`)."
    )
    return send(config, title, body)


def send(config: Config, title: str, body: str) -> list[Delivery]:
    """To the first of ``receivers`` that takes it (the fallback hears only when the root
    receiver could not)."""
    urls = {r.name: r.urls for r in config.notify.receivers}
    sent = []
    for name in receivers(config):
        outcome = deliver(name, urls[name], title, body, timeout=config.notify.timeout)
        sent.append(outcome)
        if outcome.ok:
            break
    return sent


def store_failed(exc: BaseException) -> bool:
    """Whether a cycle failed because the store cannot be read or written (disk full, read-only,
    PostgreSQL gone): nothing the watch does next lands anywhere."""
    return isinstance(exc, sqlite3.DatabaseError | StoreUnavailable)


class Watchdog:
    """The watch loop's own dead-man: pages when its cycles fail, at once when the store cannot
    be written, else after ``watch.dead_after`` failures in a row; then at most once per the
    root route's ``repeat_interval`` however many cycles fail, whatever the process's state.
    The loop goes on meanwhile, so the first cycle after the fault is gone works again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.failures = 0
        self.paged_at: float | None = None

    def completed(self) -> None:
        self.failures = 0

    def failed(
        self, config: Config, exc: BaseException, probe: Callable[[], list[str]] = list
    ) -> list[Delivery]:
        """Count a failed cycle; page when due, with what ``probe`` finds failing now (probes
        need no store). Returns the deliveries (none when not due)."""
        self.failures += 1
        now = self.clock()
        route = config.notify.route
        every = route.repeat_interval if route and route.repeat_interval else REPAGE_DEFAULT
        due = store_failed(exc) or self.failures >= config.watch.dead_after
        if not due or (self.paged_at is not None and now - self.paged_at < every):
            return []
        self.paged_at = now
        what = "cannot write its state" if store_failed(exc) else "fails every cycle"
        why = redact(f"{type(exc).__name__}: {exc}")
        store = "state.url" if config.state.url else config.state.path
        failing = probe()
        seen = "\n".join(f"- {line}" for line in failing) if failing else "- nothing"
        title = f"[CRITICAL] Lazarus {what}: {why}"
        body = (
            f"**Lazarus {what}** ({self.failures} failed cycle(s) in a row): `{why}`.\n\n"
            f"Failing in its probes now:\n{seen}\n\n"
            "It keeps trying every interval, but until a cycle completes no failure is "
            "recorded, notified or healed. Free the state disk or fix the store "
            f"({store}), then check "
            "`lazarus incidents`. This page comes straight from the watch process, at most "
            f"once per {every:g} s."
        )
        return send(config, title, body)
