"""One watch per shard at a time: the store's cycle lease, and on a Prefect server also a global
concurrency limit of one slot, held with a lease that Prefect renews while the cycle runs.

The store decides (it works with or without a server, across processes and machines); the
server's limit makes the rule visible where operators look, in the UI's concurrency page. A
cycle leaves its slot's lease id in the store (``cycles.note``): a watch whose machine died
cannot free its slot, and Prefect would keep it taken for its shortest lease, a minute, so
whoever the store lets take the shard over frees it by that id instead of waiting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse

# Prefect renews a slot's lease in a thread of its own; its public `concurrency()` would too, but it
# acquires through a per-process singleton whose client stays bound to the first server it met
from prefect.concurrency._leases import maintain_concurrency_lease
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from lazarus import cycles
from lazarus.store import Store

log = logging.getLogger(__name__)
SERVER_LEASE_MIN = 60.0  # Prefect's shortest slot lease
SERVER_TIMEOUT = 5.0  # a server slower than this is taken for down: the store's lease rules alone
_down: set[str] = set()  # servers found down here: an outage is logged once, not each cycle


class _Taken(Exception):
    """The server's slot is another's: the store's cycle is given back, not finished."""


def limit_name(shard: str) -> str:
    return "lazarus-watch-" + shard.replace("/", "-of-")


@contextmanager
def _client() -> Iterator[SyncPrefectClient]:
    """A client of the current server that answers within ``SERVER_TIMEOUT``, never retrying: a
    cycle must not wait out Prefect's back-off (a minute) while its shard goes unwatched."""
    with (
        temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}),
        get_client(httpx_settings={"timeout": SERVER_TIMEOUT}, sync_client=True) as client,
    ):
        yield client


def _acquire(client: SyncPrefectClient, name: str, duration: float) -> UUID | None:
    """The slot's lease id, or None when another holds the slot. A limit the server does not
    have (never made, deleted in the UI, a new database) is made, then asked for again."""
    for _ in range(2):
        try:
            response = client.increment_concurrency_slots_with_lease(
                [name], 1, "concurrency", duration
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:  # Locked: the one slot is held
                return None
            raise
        got = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        if got.limits:
            return got.lease_id
        with contextlib.suppress(ObjectAlreadyExists):  # another watch made it just now
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    raise RuntimeError(f"the Prefect server made no limit {name!r}")


def _release(client: SyncPrefectClient, lease: str | UUID) -> None:
    """Free a slot by its lease id (a lease Prefect already let lapse is no error)."""
    client.release_concurrency_slots_with_lease(UUID(str(lease)))


def _server_down(url: str, exc: Exception) -> None:
    """Log an outage once: the store's lease still keeps one watch per shard, so cycles go on."""
    if url not in _down:
        _down.add(url)
        log.warning(
            "the Prefect server at %s did not answer for the watch slot (%s); the state store's"
            " lease alone keeps one watch per shard until it does",
            url, exc,
        )  # fmt: skip


@contextmanager
def server_slot(store: Store, got: cycles.Cycle, ttl: float) -> Iterator[bool]:
    """Hold the shard's one slot on the Prefect server for the cycle ``got``; False when another
    watch has it. The slot a dead predecessor left taken (``got.left``) is freed first: the
    store granted this cycle, so that one is over.

    True without a slot when the server is not there: without ``PREFECT_API_URL`` (Prefect's local
    server lives only in this process), or when it is down. The store's lease is the rule that
    decides; the server's slot only shows it where operators look, and a watch that skipped its
    cycles while Prefect was down would leave the fleet unwatched.
    """
    url = PREFECT_API_URL.value()
    if not url:
        yield True
        return
    name = limit_name(got.shard)
    duration = max(ttl, SERVER_LEASE_MIN)
    try:
        with _client() as client:
            lease = _acquire(client, name, duration)
            if lease is None and got.left:
                log.warning("watch %s: freeing the Prefect slot its dead holder left", got.shard)
                _release(client, got.left)
                lease = _acquire(client, name, duration)
    except (httpx.HTTPError, RuntimeError) as exc:
        _server_down(url, exc)
        yield True
        return
    if url in _down:
        _down.discard(url)
        log.warning("the Prefect server at %s answers again: watch slots are held there", url)
    if lease is None:
        yield False
        return
    cycles.note(store, got, str(lease))
    try:
        with maintain_concurrency_lease(lease, duration, suppress_warnings=True):
            yield True
    finally:
        _free(url, lease)


def _free(url: str, lease: UUID) -> None:
    """Give the slot back at the cycle's end; a server gone meanwhile lets it lapse on its own."""
    try:
        with _client() as client:
            _release(client, lease)
    except httpx.HTTPError as exc:
        _server_down(url, exc)


@contextmanager
def watch_cycle(
    store: Store, shard: str, holder: str, *, interval: float
) -> Iterator[cycles.Cycle | cycles.Skipped]:
    """The next cycle of ``shard``, or why it is skipped: the store's lease, then the server's."""
    ttl = cycles.lease_ttl(interval)
    try:
        with cycles.hold(store, shard, holder, min_gap=interval / 2, ttl=ttl) as got:
            if isinstance(got, cycles.Skipped):
                yield got
                return
            with server_slot(store, got, ttl) as free:
                if not free:
                    if got.left:  # its slot is still to free: the next cycle tries again
                        cycles.note(store, got, got.left)
                    raise _Taken
                yield got
    except _Taken:
        yield cycles.Skipped("the Prefect server's watch slot is taken")
