"""The dead-man's page: sent when the watch itself has stopped, so it depends on nothing the
watch needs. It reads only the config and goes straight through apprise to the root receiver
(and the fallback): no store, no grouping state, no SSH, no sources."""

from __future__ import annotations

from lazarus.config import Config
from lazarus.notify.deliver import Delivery, deliver


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
        f"({config.watch.dead_after} intervals of {config.watch.interval:g} s). Failures are "
        "neither detected nor healed until it runs again. Check the watch flow runs in the "
        "Prefect UI, the work pool's worker, and the state disk (`lazarus check`)."
    )
    urls = {r.name: r.urls for r in config.notify.receivers}
    sent = []
    for name in receivers(config):
        outcome = deliver(name, urls[name], title, body, timeout=config.notify.timeout)
        sent.append(outcome)
        if outcome.ok:
            break  # the fallback hears only when the first could not
    return sent
