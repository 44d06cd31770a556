"""Answer a paused recover run's approval from a shell, as the pause form in the UI does.

The run waits with the Approval form of tasks/remediate.py; this finds it by the incident's tag
and resumes it with the person's name and decision. The run itself checks
``approval.approvers``: when it asks again, the person was not one of them.
"""

from __future__ import annotations

import time
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from lazarus.commands import UsageError
from lazarus.config import Config
from lazarus.oncall import APPROVE, REJECT
from tasks.runtime import open_store

SETTLE_S = 30  # how long to watch the run take the answer


def paused_run(incident_id: int) -> tuple[UUID, str]:
    """The recover run of ``incident_id`` that waits for approval, and its pause key."""
    wanted = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[f"incident:{incident_id}"]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=wanted, limit=2)
    if not runs:
        raise UsageError(f"no recover run of incident #{incident_id} waits for approval")
    return runs[0].id, runs[0].state.state_details.pause_key or ""


def answer(
    config: Config, incident_id: int, approver: str, decision: str, comment: str = ""
) -> str:
    """Resume the waiting run with the answer; what became of it, in one line: taken once the
    run put it in the incident's audit, refused when the run asks again instead."""
    run_id, key = paused_run(incident_id)
    since = time.time()
    resume_flow_run(
        run_id, run_input={"approver": approver, "decision": decision, "comment": comment}
    )
    for _ in range(SETTLE_S):
        if _recorded(config, incident_id, approver, since):
            return f"{decision}d by {approver}: incident #{incident_id}"
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        if state and state.is_paused() and state.state_details.pause_key != key:
            return f"refused: {approver} may not approve incident #{incident_id}"
        time.sleep(1)
    return f"sent, not yet taken: {decision} by {approver} for incident #{incident_id}"


def _recorded(config: Config, incident_id: int, approver: str, since: float) -> bool:
    store = open_store(config)
    try:
        return any(
            a.action in (APPROVE, REJECT) and a.actor == approver and a.at >= since
            for a in store.actions(incident_id)
        )
    finally:
        store.close()
