"""`lazarus deploy CONFIG`: register Lazarus on a Prefect server, idempotently.

Creates (or leaves as is) the process work pool, the auto-remediation Variable, and the watch
(on the config's interval, one run at a time) and recover deployments, sourced from this checkout.
Running it twice changes nothing but the deployments' parameters and schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from tasks.runtime import load
from tasks.switch import NAME as SWITCH

ROOT = Path(__file__).resolve().parent.parent
POOL = "lazarus"


async def ensure_pool(name: str = POOL) -> None:
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def deploy(config_path: Path, pool: str = POOL, shards: int = 1) -> list[str]:
    """Register everything; returns the deployment ids."""
    config_path = config_path.resolve()
    config = load(config_path)
    asyncio.run(ensure_pool(pool))
    if Variable.get(SWITCH) is None:
        Variable.set(SWITCH, "on")
    ids = []
    for shard in range(shards):
        watch = flow.from_source(source=str(ROOT), entrypoint="flows/watch.py:watch")
        ids.append(
            watch.deploy(
                name="watch" if shards == 1 else f"watch-{shard}",
                work_pool_name=pool,
                interval=config.watch.interval,
                parameters={"config_path": str(config_path), "shard": shard, "shards": shards},
                concurrency_limit=1,
                build=False,
                push=False,
                print_next_steps=False,
            )
        )
    recover = flow.from_source(source=str(ROOT), entrypoint="flows/recover.py:recover")
    ids.append(
        recover.deploy(
            name="recover",
            work_pool_name=pool,
            parameters={"config_path": str(config_path)},
            build=False,
            push=False,
            print_next_steps=False,
        )
    )
    return [str(i) for i in ids]
