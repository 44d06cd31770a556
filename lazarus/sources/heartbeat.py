"""The dead-man's switch's outside half: one POST to a heartbeat URL after each watch cycle
that completed (healthchecks.io, Uptime Kuma push, cronitor...). The checker there pages when
the beats stop, whatever stopped them: a crashed worker, a full state disk, a dead server."""

from __future__ import annotations

import logging

import httpx

from lazarus.secrets import resolve

log = logging.getLogger(__name__)


def beat(url_ref: str, timeout: float) -> bool:
    """POST to the heartbeat URL (a secret reference or a literal); False, logged, on failure."""
    url = resolve(url_ref).reveal()
    try:
        response = httpx.post(url, timeout=timeout)  # healthchecks.io, Kuma, cronitor take POST
    except httpx.HTTPError as exc:
        log.warning("heartbeat not sent: %s", type(exc).__name__)
        return False
    if response.status_code >= 400:
        log.warning("heartbeat not taken: HTTP %d", response.status_code)
        return False
    return True
