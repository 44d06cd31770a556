"""Remediate: run the incident's playbook inside its guards, each step a Prefect task.

The engine (lazarus.playbooks) decides what runs and retries what may pass; this layer plugs
Prefect in through its hooks: a task per step for the UI, the audit into the store, and
approval as a paused flow run that a person resumes from the UI with a form.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from prefect import get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from lazarus.config import Config
from lazarus.errors import ClearedMeanwhile, ConfigError
from lazarus.incidents import hosts_down, remediable
from lazarus.model import Incident
from lazarus.notify.silences import remediation_paused
from lazarus.notify.state import NotifyState
from lazarus.playbooks import (
    Guards,
    Hooks,
    PlannedStep,
    Playbook,
    PlaybookResult,
    StepContext,
    load_dir,
    run_guarded,
)
from lazarus.playbooks.actions import StepResult
from lazarus.playbooks.leases import hand_over_unclaimed, reconcile, unclaimed
from lazarus.playbooks.schema import StepBase
from lazarus.store import Store
from tasks.events import emit_incident
from tasks.notify import dispatch, settle
from tasks.switch import auto_remediation
from tasks.withdraw import withdrawn_once_cleared

MAX_ANSWERS = 5  # answers by people who may not approve, before the run gives up asking


class Approval(RunInput):
    """The form a paused recover run shows in the Prefect UI before a destructive step: the
    plan above it, and a name and a decision to fill in (neither has a default, so submitting
    the form unchanged is refused, not read as "no")."""

    approver: str = Field(min_length=1, max_length=100, description="your name, for the record")
    decision: Literal["approve", "reject"] = Field(description="run the plan above, or not")
    comment: str = Field("", max_length=500, description="why, for the report and the team")


def load_playbooks(config: Config) -> dict[str, Playbook]:
    """The config's playbook folder by name (empty when the folder does not exist)."""
    return load_dir(config.path(config.playbooks.dir))


def playbooks_for_watch(config: Config) -> dict[str, Playbook]:
    """The playbooks, or none when a file is broken: watch still detects and notifies."""
    try:
        return load_playbooks(config)
    except ConfigError as exc:
        get_run_logger().error("no automatic recovery this cycle, playbooks are broken: %s", exc)
        return {}


@task(name="step", cache_policy=NO_CACHE, task_run_name="{label}")
def run_step(label: str, call: Callable[[], StepResult]) -> StepResult:
    """One try of one playbook step, visible in the UI; the engine owns the retries."""
    return call()


def reconcile_interrupted(config: Config, store: Store, spare: int | None = None) -> list[Incident]:
    """What killed runs left remediating (lazarus.playbooks.leases): a lease handed over is
    announced as ``lazarus.incident.interrupted``, on which the deployed automation starts the
    recover run that takes it over; the rest are escalated and the on-call paged with the step
    each stopped at. The watch does this every cycle, and starts the taking run itself when it
    remediates (flows.watch.take_over_interrupted); returns the incidents handed over. A recover
    run spares its own incident: a handed-over lease there is the one it takes over."""
    found = reconcile(store, ttl=config.playbooks.lease, spare=spare)
    for incident in found.handed_over:
        get_run_logger().warning(
            "incident #%d: its recover run stopped mid-way; another run takes over", incident.id
        )
        emit_incident(incident, "interrupted")
    for incident in found.escalated:
        get_run_logger().error("incident #%d: %s", incident.id, incident.reason)
        emit_incident(incident, incident.state.value)
    if found.escalated:  # told with their groups, the reason and the audit in the message
        settle(dispatch(config))
    return found.handed_over


def announce_unclaimed(config: Config, store: Store) -> list[Incident]:
    """Incidents automatic recovery should have claimed by now and nobody did: the run started
    for each died before its claim (lazarus.playbooks.leases.hand_over_unclaimed). Each is
    announced as ``lazarus.incident.interrupted``, once, so the automation starts another run;
    returns them. Those a silence or maintenance window pauses, or no playbook may match, are
    not automatic recovery's to claim."""
    waiting = unclaimed(store, ttl=config.playbooks.lease)
    if not waiting or config.playbooks.dry_run or not auto_remediation():
        return []
    books, down, now = playbooks_for_watch(config), hosts_down(store), time.time()
    state = NotifyState(store)
    due = [
        i
        for i in waiting
        if remediable(config, books, i, down)
        and not remediation_paused(state, config.notify, i.facts(), now)
    ]
    handed = hand_over_unclaimed(store, due)
    for incident in handed:
        get_run_logger().warning(
            "incident #%d: no recover run claimed it; another run takes it", incident.id
        )
        emit_incident(incident, "interrupted")
    return handed


def describe(planned: list[PlannedStep]) -> list[str]:
    """One line per planned step: where it runs and the exact argv."""
    return [f"{p.block}/{p.id}: {p.action} on {p.host}: {' '.join(p.argv)}" for p in planned]


def plan_markdown(book: Playbook, incident: Incident, lines: list[str]) -> str:
    """What the approval form shows above its fields: the exact argv per host."""
    who = f"Approvers: {', '.join(book.approval.approvers)}.\n\n" if book.approval.approvers else ""
    return (
        f"### Approve {book.name} for incident #{incident.id} ({incident.symptom} on "
        f"{incident.target})?\n\n{who}"
        + "\n".join(f"- `{line}`" for line in lines)
        + "\n\nFill in your name and choose approve or reject."
    )


def remediate(
    store: Store,
    books: Mapping[str, Playbook],
    book: Playbook,
    ctx: StepContext,
    *,
    actor: str,
    request_approval: Callable[[list[str]], None],
    on_decision: Callable[[Approval], None] = lambda answer: None,
    confidence: float = 1.0,
    at_step: Callable[[str, bool], None] = lambda where, repeatable: None,
    skip: Iterable[str] = (),
) -> PlaybookResult:
    """Run ``book`` for ``ctx.incident`` under the breaker, error-rate and fleet-cap guards.

    ``books`` answers nested run_playbook steps; ``confidence`` is the diagnosis' (a trigger's
    min_confidence above it asks a person first); ``at_step`` hears each step's
    ``block/id`` and whether it may run again before it runs (the recovery lease); ``skip``
    names the steps a run this one took over finished. Raises Throttled before anything runs
    when a guard says no.
    """
    logger = get_run_logger()
    incident: Incident = ctx.incident

    def audit(step: StepBase, ok: bool, detail: str) -> None:
        store.record_action(
            incident.id, step.action, f"{step.id}@{incident.host}", actor, ok, detail
        )

    def approve(step: StepBase, planned: list[PlannedStep]) -> bool:
        lines = describe(planned)
        logger.warning(
            "step %r of %s waits for approval:\n%s", step.id, book.name, "\n".join(lines)
        )
        request_approval(lines)
        form = Approval.with_initial_data(description=plan_markdown(book, incident, lines))
        deadline = time.monotonic() + book.approval.timeout
        with withdrawn_once_cleared(ctx) as cleared:
            for attempt in range(MAX_ANSWERS):
                left = int(deadline - time.monotonic())
                if left <= 0:
                    break
                try:
                    answer = pause_flow_run(
                        wait_for_input=form,
                        timeout=left,
                        poll_interval=2,
                        key=f"approve-{incident.id}-{step.id}-{attempt}",
                    )
                except FlowPauseTimeout:
                    break
                if cleared.is_set():
                    said = f"step {step.id!r} not run: the symptom cleared while it waited"
                    logger.info("%s: %s for approval", book.name, said)
                    raise ClearedMeanwhile(said + " for approval")
                if book.approval.approvers and answer.approver not in book.approval.approvers:
                    allowed = ", ".join(book.approval.approvers)
                    logger.error("%s may not approve (approvers: %s): asking again",
                                 answer.approver, allowed)  # fmt: skip
                    continue
                on_decision(answer)
                logger.info("approval: %s by %s (%s)",
                            answer.decision, answer.approver, answer.comment)  # fmt: skip
                return answer.decision == "approve"
        logger.error("no approval within %gs: %s aborted", book.approval.timeout, book.name)
        return False

    hooks = Hooks(
        approve=approve,
        audit=audit,
        before=lambda block, step: at_step(f"{block}/{step.id}", step.impl.idempotent),
        step_runner=lambda step, call: run_step(f"{step.id} ({step.action})", call),
        playbooks=books,
        confidence=confidence,
        skip=frozenset(skip),
    )
    return run_guarded(Guards(store, sleep=ctx.sleep), book, ctx, hooks)  # a bound ends waits
