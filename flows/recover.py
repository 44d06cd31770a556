"""Recover one incident: diagnose it, pick its playbook, run it inside the guards, resolve or
escalate.

Started by the watch flow for each new incident, or by a person from the Prefect UI form
(``playbook`` names one to run instead of the matching one; ``dry_run`` only shows the plan).
Runs with ``actor="automation"`` (watch, the deployed automation) respect the auto-remediation
switch, maintenance windows and silences that pause remediation; a person's run does not.

The run's state tells the truth at a glance: ``Completed`` only when the incident resolved,
``Failed`` with the reason when it escalated, ``Paused`` while it waits for approval, and a named
completed state (``No playbook``, ``Left alone``, ``Dry run``) when nothing was meant to act.
The run is named ``recover #12 service_down web@web-2`` and tagged with the incident, symptom,
service and host. Call it through :func:`run_recover` to get the outcome as a word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import FailedRun
from prefect.states import Completed, Failed, State

from lazarus.config import Config
from lazarus.cycles import holder_id
from lazarus.diagnose.diagnosis import Diagnosis
from lazarus.diagnose.inputs import diagnosis_inputs
from lazarus.errors import LazarusError
from lazarus.model import Incident, IncidentState
from lazarus.notify.outcomes import record_outcome
from lazarus.notify.silences import remediation_paused
from lazarus.notify.state import NotifyState
from lazarus.oncall import APPROVE, REJECT, approved_by, record_step
from lazarus.playbooks import Playbook, PlaybookResult, StepContext, plan, select
from lazarus.playbooks.bound import RunBound
from lazarus.playbooks.leases import RecoveryLease, take_over
from lazarus.playbooks.runs import run_context
from lazarus.store import Store
from tasks.diagnose import diagnose, diagnosis_artifact
from tasks.events import emit_incident
from tasks.notify import dispatch, notify, settle
from tasks.oncall import publish_board, publish_report
from tasks.remediate import Approval, describe, load_playbooks, reconcile_interrupted, remediate
from tasks.runtime import flow_run_url, label_run, load, open_store
from tasks.switch import auto_remediation

# Called once the run holds its incident's claim (or knows it will not act): the watch starts
# its next recover run then, not at the same moment (flows.watch.Recoveries).
claimed_hook: ContextVar[Callable[[], None]] = ContextVar("claimed_hook", default=lambda: None)


@flow(name="recover", log_prints=True)
def recover(
    incident_id: int,
    config_path: str = "lazarus.yaml",
    dry_run: bool = False,
    actor: str = "operator",
    playbook: str = "",
    timeout: float = 0.0,
) -> State:
    """Recover incident ``incident_id``; the final state's result is the outcome word.

    ``timeout`` (seconds, 0: none) bounds the run: past it, the run stops at its next step or
    wait and escalates (lazarus.playbooks.bound); the watch bounds the runs it starts."""
    bound = RunBound(timeout)
    config = load(config_path)
    store = open_store(config)
    try:
        reconcile_interrupted(config, store, spare=incident_id)  # its own lease is this run's
        incident = store.get(incident_id)
        label_run(run_name(incident), run_tags(incident))
        books = load_playbooks(config)
        lines, changes = diagnosis_inputs(store, incident)  # what the watch saw
        diagnosis = diagnose(config, incident, lines, changes)
        return _act(config, store, books, incident, diagnosis, dry_run, actor, playbook, bound)
    finally:
        store.close()


def _act(
    config: Config,
    store: Store,
    books: dict[str, Playbook],
    incident: Incident,
    diagnosis: Diagnosis,
    dry_run: bool,
    actor: str,
    playbook: str,
    bound: RunBound,
) -> State:
    """Choose the playbook and run it within ``bound``; the diagnosis artifact comes after,
    as does the board (each cycle publishes it too): neither delays the recovery."""
    logger, incident_id = get_run_logger(), incident.id
    try:
        book = _choose(books, incident, playbook, diagnosis.top.name if diagnosis.top else None)
        if book is None:  # the on-call was told when it opened; nothing here may act on it
            logger.info("no playbook matches #%d (%s)", incident_id, diagnosis.text)
            why = f"no playbook matches {incident.fingerprint}: the on-call decides"
            return Completed(name="No playbook", message=why, data=f"no playbook: {why}")
        if dry_run or config.playbooks.dry_run:
            outcome = _dry_run(config, book, incident)
            return Completed(name="Dry run", message=outcome, data=outcome)
        if actor == "automation":
            paused = "auto-remediation is off" if not auto_remediation() else None
            paused = paused or remediation_paused(
                NotifyState(store), config.notify, incident.facts(), time.time()
            )
            if paused:
                logger.info("incident #%d left alone: %s", incident_id, paused)
                return Completed(name="Left alone", message=paused, data=f"paused: {paused}")
        url = flow_run_url(config)
        # machine and process (a restarted serve sees it gone at once), then the run for people
        owner, ttl = f"{holder_id()} {url}".strip(), config.playbooks.lease
        claimed, finished = store.claim(incident_id), None
        if claimed is None and (finished := take_over(store, incident_id, owner, ttl)) is not None:
            claimed = store.get(incident_id)  # its run died at a step safe to repeat
            logger.warning("incident #%d: taking over after %s", incident_id, finished or "none")
        if claimed is None:
            logger.info("incident #%d is %s: another run has it", incident_id, incident.state)
            why = f"incident is {incident.state}: another run has it"
            return Completed(name="Left alone", message=why, data=f"skipped: {incident.state}")
        sure = diagnosis.top.confidence if diagnosis.top and book.on_cause else 1.0
        with RecoveryLease(  # at once: a claim without a lease looks dead after ttl
            store, incident_id, owner=owner, ttl=ttl, resumed=finished is not None
        ) as lease:
            claimed_hook.get()()
            store.set_flow_run_url(incident_id, url)  # the board links the run from the next cycle

            def at_step(where: str, repeatable: bool) -> None:
                bound.check(where)
                lease.at_step(where, repeatable)

            try:
                end, reason, lines = _run(
                    config, store, books, book, claimed, actor, url, sure,
                    at_step, bound.sleep, finished or [],
                )  # fmt: skip
            except Exception as exc:  # never leave the incident remediating: say where it broke
                reason = f"{book.name} stopped: {type(exc).__name__}: {exc}"
                store.transition(
                    incident_id,
                    IncidentState.ESCALATED,
                    reason=reason,
                    expect=(IncidentState.REMEDIATING,),
                )
                raise
            if decided := approved_by(store, claimed):
                lines = [f"approval: {decided}", *lines]
            # kept before the end shows: a watch's message that says it ended has what was done
            record_outcome(NotifyState(store), incident_id, lines, diagnosis.text, time.time())
            final = store.transition(incident_id, end, reason=reason)
        emit_incident(final, final.state.value)
        settle(dispatch(config))  # the outcome goes with its group's message, when that is due
        _artifacts(store, final)
        publish_board(config)
        if final.state == IncidentState.RESOLVED:
            return Completed(message=final.reason, data=final.state.value)
        return Failed(message=final.reason, data=final.state.value)
    finally:
        diagnosis_artifact(diagnosis)


def run_recover(incident_id: int, config_path: str, **options: object) -> str:
    """Run :func:`recover` here and now; its outcome word (``resolved``, ``escalated``,
    ``no playbook: ...``, ``dry-run: ...``, ``paused: ...``, ``skipped: ...``), whatever state
    the run ended in."""
    state = recover(incident_id, config_path, return_state=True, **options)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, FailedRun):  # the server failed it: an approval that never came
        return IncidentState.ESCALATED.value
    if isinstance(outcome, BaseException):  # the run crashed: an unexpected error, not an outcome
        raise outcome
    return str(outcome)


def run_name(incident: Incident) -> str:
    """``recover #12 service_down web@web-2``: what a person looks for in the runs list."""
    return f"recover #{incident.id} {incident.symptom} {incident.target}"


def run_tags(incident: Incident) -> list[str]:
    return [
        f"incident:{incident.id}",
        f"symptom:{incident.symptom}",
        f"service:{incident.service or '-'}",
        f"host:{incident.host}",
    ]


def _choose(
    books: dict[str, Playbook], incident: Incident, name: str, cause: str | None
) -> Playbook | None:
    """The named playbook, or the first whose trigger matches the incident and its cause."""
    if not name:
        return select(books, incident, cause)
    if name not in books:
        raise LazarusError(f"no playbook named {name!r}; there are: {', '.join(sorted(books))}")
    return books[name]


def _dry_run(config, book: Playbook, incident: Incident) -> str:
    """Show exactly what would run, change nothing."""
    lines = describe(plan(book, StepContext(incident, config)))
    get_run_logger().info("dry run of %s, nothing changed:\n%s", book.name, "\n".join(lines))
    create_markdown_artifact(
        key=f"incident-{incident.id}-plan",
        markdown=f"# Plan of {book.name} for #{incident.id}\n\n"
        + "\n".join(f"- `{line}`" for line in lines),
        description="dry run: what recovery would do",
    )
    return f"dry-run: {book.name}: " + "; ".join(lines)


def _run(
    config,
    store: Store,
    books: dict[str, Playbook],
    book: Playbook,
    incident: Incident,
    actor: str,
    url: str,
    confidence: float,
    at_step: Callable[[str, bool], None],
    sleep: Callable[[float], None],
    finished: list[str],
) -> tuple[IncidentState, str, list[str]]:
    """The playbook's run, and how its incident ends (state, reason, the steps' lines):
    resolved only when its verify passed."""

    def request_approval(lines: list[str]) -> None:
        settle(notify(config, incident, "approval", flow_run_url=url, actions=lines))

    def report(message: str) -> None:
        settle(notify(config, incident, "report", flow_run_url=url, actions=[message]))

    def decided(answer: Approval) -> None:
        """A person's answer: in the audit, as an event, and on the board."""
        step = APPROVE if answer.decision == "approve" else REJECT
        record_step(store, incident, step, answer.approver, answer.comment)
        kind = "approved" if answer.decision == "approve" else "rejected"
        emit_incident(incident, kind, by=answer.approver, comment=answer.comment)
        publish_board(config)

    try:
        with run_context(config, incident, notify=report) as ctx:
            ctx.sleep = sleep  # waits end at the run's bound
            result = remediate(
                store,
                books,
                book,
                ctx,
                actor=actor,
                request_approval=request_approval,
                on_decision=decided,
                confidence=confidence,
                at_step=at_step,
                skip=finished,
            )
    except LazarusError as exc:  # a guard said no, before anything ran
        return IncidentState.ESCALATED, f"{book.name} not run: {type(exc).__name__}: {exc}", []
    lines = [f"{s.block}/{s.id}: {'ok' if s.ok else 'FAILED'}: {s.detail}" for s in result.steps]
    if result.status == "resolved":
        return IncidentState.RESOLVED, f"{book.name}: every step and verify passed", lines
    return IncidentState.ESCALATED, _why(result), lines


def _why(result: PlaybookResult) -> str:
    failed = [s for s in result.steps if not s.ok]
    where = f" at step {failed[0].id!r} after {failed[0].attempts} attempt(s)" if failed else ""
    return f"{result.playbook} {result.status}{where}: {result.error}"


def _artifacts(store: Store, incident: Incident) -> None:
    """The incident report and its action audit, where the UI shows them beside the run."""
    publish_report(store, incident)
    create_table_artifact(
        key=f"incident-{incident.id}-audit",
        table=[
            {
                "action": a.action,
                "target": a.target,
                "actor": a.actor,
                "ok": a.ok,
                "detail": a.detail[:200],
            }
            for a in store.actions(incident.id)
        ],
        description="what recovery did, where and by whom",
    )
