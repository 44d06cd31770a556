"""`lazarus deploy -c CONFIG`: register Lazarus on a Prefect server, idempotently.

Creates (or leaves as is) the process work pool, the auto-remediation Variable, and the watch
(on the config's interval, one run at a time: a cycle that is due while the last one still
runs is cancelled, not queued behind it), recover, acknowledge, backtest and drill deployments,
sourced from this checkout. An automation runs the recover deployment for each
``lazarus.incident.opened`` event (and each ``lazarus.incident.interrupted``: another run takes
over a dead one's recovery), so the watch deployments only detect and notify
(``remediate=False``); the recover flow itself checks the auto-remediation switch. A second,
proactive automation is the dead-man's switch: once a watch run has completed, no completed
watch run within ``watch.dead_after`` intervals and a run's start-up allowance
(lazarus.notify.deadman.deployed_silence) runs the deadman deployment, which pages
without the store (flows/deadman.py). A third marks Crashed every run whose heartbeats stopped
(its worker died), which frees its deployment's slot. It writes ``deployments/prefect.yaml``
of what it deployed. Running it twice changes nothing but parameters and schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import prefect
import yaml
from prefect import flow
from prefect.automations import AutomationCore, EventTrigger, Posture, RunDeployment
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import (
    ConcurrencyLimitConfig,
    ConcurrencyLimitStrategy,
    StateType,
)
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectAlreadyExists
from prefect.variables import Variable

from lazarus.notify.deadman import deployed_silence
from tasks.runtime import load
from tasks.switch import NAME as SWITCH

ROOT = Path(__file__).resolve().parent.parent
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"  # written by every deploy
POOL = "lazarus"
AUTOMATION = "lazarus: recover each opened incident"
DEADMAN = "lazarus: page when the watch stops"
PROACTIVE_MIN = 10.0  # Prefect's shortest window for a proactive trigger
CRASH_AUTOMATION = "lazarus: crash runs whose worker died"
HEARTBEAT = 30  # seconds between flow run heartbeats (Prefect's shortest)
TAG = "lazarus"  # on every deployment, so its runs carry it
# A late watch cycle is worth nothing once the next is due: skip it rather than build a backlog
# (a worker that starts late finds a dozen due runs: cancelled, not a process each). A run whose
# worker died after setting it Pending frees the slot after Prefect's shortest grace, a minute,
# not its default five; one that died Running is crashed by CRASH_AUTOMATION.
SLOT_GRACE = 60
ONE_WATCH_AT_A_TIME = ConcurrencyLimitConfig(
    limit=1,
    collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW,
    grace_period_seconds=SLOT_GRACE,
)


async def ensure_pool(name: str = POOL) -> None:
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


async def ensure_automation(recover_id: UUID) -> UUID:
    """Create or update (by name) the automation that starts recover on incident.opened (and
    on incident.interrupted)."""
    return await _upsert(
        AutomationCore(
            name=AUTOMATION,
            description="Runs the recover deployment for every lazarus.incident.opened event,"
            " and for every lazarus.incident.interrupted one (a recover run died at a step safe"
            " to repeat: the new run takes over from there).",
            trigger=EventTrigger(
                expect={"lazarus.incident.opened", "lazarus.incident.interrupted"},
                match={"prefect.resource.id": "lazarus.target.*"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=recover_id,
                    # one expression: Prefect renders it with its type, an int here
                    parameters={
                        "incident_id": "{{ event.payload.incident }}",
                        "actor": "automation",
                    },
                )
            ],
        )
    )


async def ensure_deadman(watch_ids: list[UUID], deadman_id: UUID, within: float) -> UUID:
    """Create or update (by name) the dead-man's switch: after a watch run completed, no other
    completes within ``within`` seconds -> one run of the deadman deployment. It fires once
    per silence (the window opens again only at the next completed run), never before the
    first run, and whatever stops the runs: a crashed cycle, a full state disk, no schedule."""
    watched = [f"prefect.deployment.{i}" for i in watch_ids]
    return await _upsert(
        AutomationCore(
            name=DEADMAN,
            description="Pages through the deadman deployment when watch runs stop completing.",
            trigger=EventTrigger(
                after={"prefect.flow-run.Completed"},
                expect={"prefect.flow-run.Completed"},
                match_related=ResourceSpecification({"prefect.resource.id": watched}),
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=max(within, PROACTIVE_MIN)),
            ),
            actions=[RunDeployment(source="selected", deployment_id=deadman_id)],
        )
    )


def crash_automation() -> AutomationCore:
    """Prefect's recipe for runs whose worker died (SIGKILL, a lost machine): a run silent for
    three heartbeats is marked Crashed, which frees its deployment's concurrency slot, so that
    shard's next watch run is not held back by a run that will never end (Prefect's own lease
    on that slot lapses only after 5 minutes). The silence counts from Pending, not from the
    first heartbeat: a run whose worker died while its process started never sent one."""
    return AutomationCore(
        name=CRASH_AUTOMATION,
        description="Marks a Lazarus flow run Crashed when its heartbeats stop.",
        trigger=EventTrigger(
            after={
                "prefect.flow-run.Pending",
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
            },
            expect={
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
                # a run waiting for a person's approval sends no heartbeat; its worker is alive
                "prefect.flow-run.Paused",
                "prefect.flow-run.Suspended",
                # recover's named final states (flows/recover.py): an ended run is never crashed
                "prefect.flow-run.No playbook",
                "prefect.flow-run.Left alone",
                "prefect.flow-run.Dry run",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.tag.{TAG}"},  # Lazarus's runs only
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=3 * HEARTBEAT),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {3 * HEARTBEAT} s: its worker died",
            )
        ],
    )


async def _upsert(automation: AutomationCore) -> UUID:
    async with get_client() as client:
        existing = await client.read_automations_by_name(automation.name)
        if existing:
            await client.update_automation(existing[0].id, automation)
            return existing[0].id
        return await client.create_automation(automation)


class _Deployer:
    """Deploys flows of this checkout to one work pool, and keeps each as ``prefect.yaml``
    declares it (``declared``). Prefect notes on every deployment to a process pool that
    ``.serve`` exists; said once per ``lazarus deploy``, not once per flow."""

    def __init__(self, pool: str):
        self.pool, self.noted = pool, False
        self.declared: list[dict[str, Any]] = []

    def __call__(
        self,
        entrypoint: str,
        name: str,
        *,
        parameters: dict[str, Any],
        interval: float | None = None,
        cron: str | None = None,
        concurrency_limit: ConcurrencyLimitConfig | None = None,
    ) -> UUID:
        job_variables = {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT)}}
        source = flow.from_source(source=str(ROOT), entrypoint=entrypoint)
        deployment_id = source.deploy(
            name=name,
            work_pool_name=self.pool,
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=self.noted,
            job_variables=job_variables,
            tags=[TAG],
            parameters=parameters,
            interval=interval,
            cron=cron,
            concurrency_limit=concurrency_limit,
        )
        self.noted = True
        entry: dict[str, Any] = {"name": name, "entrypoint": entrypoint, "parameters": parameters}
        if interval is not None:
            entry["schedules"] = [{"interval": interval}]
        if cron is not None:
            entry["schedules"] = [{"cron": cron, "timezone": "UTC"}]
        if concurrency_limit is not None:
            entry["concurrency_limit"] = {
                "limit": concurrency_limit.limit,
                "collision_strategy": concurrency_limit.collision_strategy.value,
                "grace_period_seconds": concurrency_limit.grace_period_seconds,
            }
        entry.update(tags=[TAG], work_pool={"name": self.pool, "job_variables": job_variables})
        self.declared.append(entry)
        return deployment_id


def write_prefect_file(path: Path, config_path: Path, deployments: list[dict[str, Any]]) -> None:
    """``prefect.yaml`` of exactly the deployments ``lazarus deploy`` made: what `prefect deploy
    --all --prefect-file` re-applies unchanged (from CI, say) instead of a second, hand-kept
    description that drifts. It names this machine's paths, so it is written, not shipped."""
    header = (
        f"# Written by `lazarus deploy -c {config_path}`: the deployments it made, as Prefect's\n"
        "# own CLI re-applies them unchanged, from this checkout's folder:\n"
        f"#   prefect deploy --all --prefect-file {path.relative_to(ROOT)}\n"
        "# The automations (recover each opened incident, crash runs whose worker died) and the\n"
        "# auto-remediation switch come from `lazarus deploy` only: run it once per server.\n"
    )
    body = {
        "name": "lazarus",
        "prefect-version": prefect.__version__,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
        "deployments": deployments,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(body, sort_keys=False))


def deploy(config_path: Path, pool: str = POOL, shards: int = 1) -> list[str]:
    """Register everything and write ``PREFECT_FILE``; returns the deployment ids."""
    config_path = config_path.resolve()
    config = load(config_path)
    asyncio.run(ensure_pool(pool))
    if Variable.get(SWITCH) is None:
        Variable.set(SWITCH, "on")
    deploy_flow = _Deployer(pool)
    ids = [
        deploy_flow(
            "flows/watch.py:watch",
            "watch" if shards == 1 else f"watch-{shard}",
            interval=config.watch.interval,
            parameters={
                "config_path": str(config_path),
                "shard": shard,
                "shards": shards,
                "remediate": False,  # the automation starts recover runs
            },
            concurrency_limit=ONE_WATCH_AT_A_TIME,
        )
        for shard in range(shards)
    ]
    on_config = {"config_path": str(config_path)}
    for name in ("recover", "acknowledge", "backtest", "deadman"):
        ids.append(deploy_flow(f"flows/{name}.py:{name}", name, parameters=on_config))
    for db in config.inventory.databases:
        if db.snapshots.schedule:  # cron in UTC, one deployment per database
            ids.append(
                deploy_flow(
                    "flows/snapshot.py:snapshot",
                    f"snapshot-{db.name}",
                    cron=db.snapshots.schedule,
                    parameters={"config_path": str(config_path), "database": db.name},
                    concurrency_limit=ONE_WATCH_AT_A_TIME,
                )
            )
    ids.append(
        deploy_flow(
            "flows/drill.py:fire_drill",
            "drill",
            parameters={"sandbox_dir": str(config_path.parent)},  # a sandbox's own config
        )
    )
    asyncio.run(ensure_automation(ids[shards]))
    silence = deployed_silence(config.watch)
    asyncio.run(ensure_deadman(ids[:shards], ids[shards + 3], silence))
    asyncio.run(_upsert(crash_automation()))
    write_prefect_file(PREFECT_FILE, config_path, deploy_flow.declared)
    return [str(i) for i in ids]
