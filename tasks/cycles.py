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

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

# prefect.concurrency.sync.concurrency is made of these, and hides the lease id we must keep
from prefect.concurrency._leases import maintain_concurrency_lease
from prefect.concurrency._sync import acquire_concurrency_slots_with_lease
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from lazarus import cycles
from lazarus.store import Store

log = logging.getLogger(__name__)
SERVER_LEASE_MIN = 60.0  # Prefect's shortest slot lease
_made: set[str] = set()


class _Taken(Exception):
    """The server's slot is another's: the store's cycle is given back, not finished."""


def limit_name(shard: str) -> str:
    return "lazarus-watch-" + shard.replace("/", "-of-")


def _ensure_limit(name: str, again: bool = False) -> None:
    """Create the limit once per server (a name made on another server proves nothing here);
    ``again`` once the server said it has none (deleted in the UI, a new database)."""
    made = f"{PREFECT_API_URL.value()} {name}"
    if made in _made and not again:
        return
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    _made.add(made)


def _acquire(name: str, duration: float) -> UUID | None:
    """The slot's lease id, or None when another holds the slot. A limit the server lost is
    made again: taken for "held", it skipped every cycle for good (the watch went blind)."""
    _ensure_limit(name)
    for again in (False, True):
        try:
            got = acquire_concurrency_slots_with_lease(
                [name], 1, max_retries=0, lease_duration=duration, strict=True,
                suppress_warnings=True,
            )  # fmt: skip
        except ConcurrencySlotAcquisitionError as exc:
            if exc.__cause__ is not None or again:  # refused (423) or failed: not ours
                return None
            _ensure_limit(name, again=True)  # no cause: the server has no such limit
            continue
        return got.lease_id
    return None


def _release(lease: str | UUID) -> None:
    """Free a slot by its lease id (a lease Prefect already let lapse is no error)."""
    with get_client(sync_client=True) as client:
        client.release_concurrency_slots_with_lease(UUID(str(lease)))


@contextmanager
def server_slot(store: Store, got: cycles.Cycle, ttl: float) -> Iterator[bool]:
    """Hold the shard's one slot on the Prefect server for the cycle ``got``; False when another
    watch has it. The slot a dead predecessor left taken (``got.left``) is freed first: the
    store granted this cycle, so that one is over.

    Without ``PREFECT_API_URL`` (Prefect's local server lives only in this process) it is
    always True: the store's lease is then the only rule, and enough.
    """
    if not PREFECT_API_URL.value():
        yield True
        return
    name = limit_name(got.shard)
    duration = max(ttl, SERVER_LEASE_MIN)
    lease = _acquire(name, duration)
    if lease is None and got.left:
        log.warning("watch %s: freeing the Prefect slot its dead holder left", got.shard)
        _release(got.left)
        lease = _acquire(name, duration)
    if lease is None:
        yield False
        return
    cycles.note(store, got, str(lease))
    try:
        with maintain_concurrency_lease(lease, duration, suppress_warnings=True):
            yield True
    finally:
        _release(lease)


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
