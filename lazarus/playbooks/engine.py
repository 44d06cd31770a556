"""Run a playbook: plan (dry run), steps with retries, compensation, on_failure and verify.

Never imports Prefect: the flow layer plugs in through ``Hooks`` (approval, audit, and a
step runner so each step can become a task).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from lazarus.errors import (
    ActionError,
    ApprovalRejected,
    ClearedMeanwhile,
    ConfigError,
    LazarusError,
    TransientError,
    VerifyFailed,
)
from lazarus.model import Incident
from lazarus.notify.route import matches_all, parse_matchers
from lazarus.playbooks.actions import StepResult
from lazarus.playbooks.context import StepContext
from lazarus.playbooks.schema import Playbook, StepBase
from lazarus.playbooks.template import Pending, render


@dataclass(frozen=True)
class PlannedStep:
    """One step as it would run: which action, on which host, with which argv."""

    block: str
    id: str
    action: str
    host: str
    argv: tuple[str, ...]
    destructive: bool


@dataclass(frozen=True)
class StepOutcome:
    block: str
    id: str
    ok: bool
    detail: str
    attempts: int


@dataclass
class PlaybookResult:
    playbook: str
    status: Literal["resolved", "failed", "unresolved", "rejected", "dry_run"]
    steps: list[StepOutcome] = field(default_factory=list)
    error: str = ""


StepRunner = Callable[[StepBase, Callable[[], StepResult]], StepResult]


@dataclass
class Hooks:
    """What the flow layer supplies; the defaults approve nothing and record nothing."""

    approve: Callable[[StepBase, list[PlannedStep]], bool] = lambda step, plan: False
    audit: Callable[[StepBase, bool, str], None] = lambda step, ok, detail: None
    before: Callable[[str, StepBase], None] = lambda block, step: None  # e.g. the lease's step
    step_runner: StepRunner | None = None
    rng: random.Random = field(default_factory=random.Random)
    confidence: float = 1.0
    playbooks: Mapping[str, Playbook] = field(default_factory=dict)
    depth: int = 0
    skip: frozenset[str] = frozenset()  # "block/id" a run this one took over finished


def select(
    playbooks: Mapping[str, Playbook] | list[Playbook], incident: Incident, cause: str | None = None
) -> Playbook | None:
    """The first playbook (by name) whose trigger matches the incident's facts and cause."""
    books = playbooks.values() if isinstance(playbooks, Mapping) else playbooks
    facts = {**incident.facts(), "cause": cause or ""}
    for book in sorted(books, key=lambda b: b.name):
        if matches_all(book.trigger.matchers, facts):
            return book
    return None


def may_match(book: Playbook, incident: Incident) -> bool:
    """Whether ``book``'s trigger matches the incident's facts, whatever cause diagnosis finds:
    watch starts recovery on this, and recover picks with the diagnosed cause."""
    facts = incident.facts()
    return all(
        m.matches(facts)
        for text in book.trigger.matchers
        for m in parse_matchers(text)
        if m.name != "cause"
    )


def _bind(step: StepBase, ctx: StepContext, planning: bool = False) -> tuple[StepContext, Any]:
    """The step's context and its parameters with every placeholder filled and re-validated
    (``planning``: what earlier steps report is not known yet)."""
    sctx = replace(ctx, step_id=step.id, timeout=step.timeout)
    scope = {**ctx.scope(), "steps": Pending()} if planning else ctx.scope()
    try:
        raw = render(step.params.model_dump(), scope, step.id)
        return sctx, type(step.params).model_validate(raw)
    except ConfigError as exc:
        raise ActionError(step.id, exc.reason) from None
    except ValueError as exc:  # pydantic: a filled value has the wrong type
        raise ActionError(step.id, f"parameters after templating: {exc}") from None


def _blocks(book: Playbook) -> list[tuple[str, StepBase]]:
    return [(b, s) for b in ("steps", "verify", "on_failure") for s in getattr(book, b)]


def applies(step: StepBase, ctx: StepContext) -> bool:
    """A step runs unless its ``when:`` matchers miss the incident's facts."""
    return not step.when or matches_all(step.when, ctx.facts())


def plan(book: Playbook, ctx: StepContext) -> list[PlannedStep]:
    """Exactly what would run, on which host, with which argv; changes nothing."""
    out = []
    for block, step in _blocks(book):
        if not applies(step, ctx):
            continue
        sctx, params = _bind(step, ctx, planning=True)
        host, argv = step.impl.describe(sctx, params)
        out.append(
            PlannedStep(block, step.id, step.action, host, tuple(argv), step.impl.destructive)
        )
    return out


def _attempt(step: StepBase, ctx: StepContext, hooks: Hooks) -> tuple[StepResult, int]:
    """Run one step; retry TransientError with backoff and jitter, never anything else.

    Any other exception (a bug, a library's error) fails the step as an ActionError, so a
    run always ends with a state, never with its incident stuck mid-way."""
    attempts = step.retries + 1 if step.retry_on == "transient" else 1
    for attempt in range(attempts):
        try:
            call = partial(step.impl.run, *_bind(step, ctx))
            result = hooks.step_runner(step, call) if hooks.step_runner else call()
            return result, attempt + 1
        except TransientError:
            if attempt + 1 >= attempts:
                raise
            delay = step.delay(attempt)
            ctx.sleep(hooks.rng.uniform(delay / 2, delay))
        except LazarusError:
            raise
        except Exception as exc:  # see the docstring
            raise ActionError(step.id, f"unexpected {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable: the loop returns or raises")


def _asks_before(book: Playbook, step: StepBase, confidence: float) -> bool:
    """Approval is asked once: before the first step when the playbook says ``always`` or the
    diagnosis is less sure than its trigger wants, else before its first destructive step."""
    if not book.needs_approval(confidence):
        return False
    early = book.approval.required == "always" or confidence < book.trigger.min_confidence
    return early or step.impl.destructive


def _run_block(
    book: Playbook,
    block: str,
    steps: list[StepBase],
    ctx: StepContext,
    hooks: Hooks,
    result: PlaybookResult,
    done: list[StepBase],
    approved: list[bool],
) -> None:
    for step in (s for s in steps if applies(s, ctx)):
        if f"{block}/{step.id}" in hooks.skip:
            detail = "finished by the run this one took over"
            result.steps.append(StepOutcome(block, step.id, True, detail, 0))
            done.append(step)
            continue
        if not approved[0] and _asks_before(book, step, hooks.confidence):
            if not hooks.approve(step, plan(book, ctx)):
                raise ApprovalRejected(f"{book.name}: step {step.id!r} was not approved")
            approved[0] = True
        hooks.before(block, step)
        try:
            outcome, attempts = _attempt(step, ctx, hooks)
        except LazarusError as exc:
            hooks.audit(step, False, _error(exc))
            retried = isinstance(exc, TransientError) and step.retry_on == "transient"
            tries = step.retries + 1 if retried else 1
            result.steps.append(StepOutcome(block, step.id, False, _error(exc), tries))
            raise
        hooks.audit(step, True, outcome.detail)
        ctx.memory.setdefault("steps", {})[step.id] = {"detail": outcome.detail, **outcome.data}
        result.steps.append(StepOutcome(block, step.id, True, outcome.detail, attempts))
        done.append(step)


def _error(exc: LazarusError) -> str:
    """The error as the audit and the escalation show it: its kind, then what happened."""
    return f"{type(exc).__name__}: {exc}"


def _undo(
    book: Playbook, done: list[StepBase], ctx: StepContext, hooks: Hooks, result: PlaybookResult
) -> None:
    """Compensations of the completed steps, newest first; then on_failure. Best effort."""
    undo = [s.compensate for s in reversed(done) if s.compensate is not None]
    for block, steps in (("compensate", undo), ("on_failure", list(book.on_failure))):
        for step in steps:
            try:
                _run_block(book, block, [step], ctx, hooks, result, [], [True])
            except LazarusError:
                continue  # recorded in result and audit; the rest still runs


def run(book: Playbook, ctx: StepContext, hooks: Hooks | None = None) -> PlaybookResult:
    """Execute ``book`` for ``ctx.incident``; never raises for a step failure (see status)."""
    hooks = hooks or Hooks()
    result = PlaybookResult(book.name, "resolved")
    if ctx.settings.dry_run:
        result.status = "dry_run"
        return result
    ctx = replace(ctx, memory={}, run_playbook=lambda name: _nested(name, ctx, hooks))
    done: list[StepBase] = []
    approved = [False]
    try:
        _run_block(book, "steps", list(book.steps), ctx, hooks, result, done, approved)
    except ClearedMeanwhile as exc:  # nothing left to do but to check it stays cleared
        result.steps.append(StepOutcome("steps", "approval", True, str(exc), 0))
    except ApprovalRejected as exc:
        result.status, result.error = "rejected", str(exc)
        return result
    except LazarusError as exc:
        result.status, result.error = "failed", _error(exc)
        _undo(book, done, ctx, hooks, result)
        return result
    try:
        _run_block(book, "verify", list(book.verify), ctx, hooks, result, [], [True])
    except LazarusError as exc:
        result.status = "unresolved"
        result.error = str(VerifyFailed(f"{book.name}: the symptom is still there ({exc})"))
        _undo(book, [], ctx, hooks, result)
    return result


def _nested(name: str, ctx: StepContext, hooks: Hooks) -> PlaybookResult:
    if hooks.depth + 1 >= ctx.settings.max_depth:
        raise ActionError(
            ctx.step_id, f"run_playbook {name!r}: nesting deeper than {ctx.settings.max_depth}"
        )
    if name not in hooks.playbooks:
        raise ActionError(ctx.step_id, f"run_playbook: no playbook named {name!r}")
    inner = run(hooks.playbooks[name], ctx, replace(hooks, depth=hooks.depth + 1, skip=frozenset()))
    if inner.status != "resolved":
        raise ActionError(ctx.step_id, f"playbook {name!r} {inner.status}: {inner.error}")
    return inner
