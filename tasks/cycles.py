"""One watch per shard at a time: the store's cycle lease, and on a Prefect server also a global
concurrency limit of one slot, held with a lease that Prefect renews while the cycle runs and
frees when its holder dies.

The store decides (it works with or without a server, across processes and machines); the
server's limit makes the rule visible where operators look, in the UI's concurrency page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from lazarus import cycles
from lazarus.store import Store

SERVER_LEASE_MIN = 60.0  # Prefect's shortest slot lease
_made: set[str] = set()


def limit_name(shard: str) -> str:
    return "lazarus-watch-" + shard.replace("/", "-of-")


def _ensure_limit(name: str) -> None:
    if name in _made:
        return
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    _made.add(name)


@contextmanager
def server_slot(shard: str, ttl: float) -> Iterator[bool]:
    """Hold the shard's one slot on the Prefect server; False when another watch has it.

    Without ``PREFECT_API_URL`` (Prefect's local server lives only in this process) it is
    always True: the store's lease is then the only rule, and enough.
    """
    if not PREFECT_API_URL.value():
        yield True
        return
    name = limit_name(shard)
    _ensure_limit(name)
    stack = ExitStack()
    try:
        stack.enter_context(
            concurrency(name, max_retries=0, lease_duration=max(ttl, SERVER_LEASE_MIN), strict=True)
        )
    except ConcurrencySlotAcquisitionError:
        yield False
        return
    with stack:
        yield True


@contextmanager
def watch_cycle(
    store: Store, shard: str, holder: str, *, interval: float
) -> Iterator[cycles.Cycle | cycles.Skipped]:
    """The next cycle of ``shard``, or why it is skipped: the store's lease, then the server's."""
    ttl = max(30.0, 3 * interval)
    with cycles.hold(store, shard, holder, min_gap=interval / 2, ttl=ttl) as got:
        if isinstance(got, cycles.Skipped):
            yield got
            return
        with server_slot(shard, ttl) as free:
            yield got if free else cycles.Skipped("the Prefect server's watch slot is taken")
