"""Remediate: run the incident's playbook inside its guards, each step a Prefect task.

The engine (lazarus.playbooks) decides what runs and retries what may pass; this layer plugs
Prefect in through its hooks: a task per step for the UI, the audit into the store, and
approval as a paused flow run that a person resumes from the UI with a form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prefect import get_run_logger, pause_flow_run, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput

from lazarus.config import Config
from lazarus.errors import ConfigError
from lazarus.model import Incident
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
from lazarus.playbooks.schema import StepBase
from lazarus.store import Store


class Approval(RunInput):
    """The form a paused recover run shows in the Prefect UI before a destructive step."""

    approve: bool = False
    comment: str = ""


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


def describe(planned: list[PlannedStep]) -> list[str]:
    """One line per planned step: where it runs and the exact argv."""
    return [f"{p.block}/{p.id}: {p.action} on {p.host}: {' '.join(p.argv)}" for p in planned]


def remediate(
    store: Store,
    books: Mapping[str, Playbook],
    book: Playbook,
    ctx: StepContext,
    *,
    actor: str,
    request_approval: Callable[[list[str]], None],
    confidence: float = 1.0,
) -> PlaybookResult:
    """Run ``book`` for ``ctx.incident`` under the breaker, error-rate and fleet-cap guards.

    ``books`` answers nested run_playbook steps; ``confidence`` is the diagnosis' (a trigger's
    min_confidence above it asks a person first). Raises Throttled before anything runs when a
    guard says no.
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
        try:
            answer = pause_flow_run(
                wait_for_input=Approval,
                timeout=int(book.approval.timeout),
                poll_interval=2,
                key=f"approve-{incident.id}-{step.id}",
            )
        except FlowPauseTimeout:
            logger.error("no approval within %gs: %s aborted", book.approval.timeout, book.name)
            return False
        logger.info("approval: %s (%s)", answer.approve, answer.comment)
        return answer.approve

    hooks = Hooks(
        approve=approve,
        audit=audit,
        step_runner=lambda step, call: run_step(f"{step.id} ({step.action})", call),
        playbooks=books,
        confidence=confidence,
    )
    return run_guarded(Guards(store), book, ctx, hooks)
