"""Actions that need no transport of their own: wait, notify, HTTP checks, nested playbooks."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from lazarus.config import Duration, Host
from lazarus.detect.hosts import REACH_COMMAND
from lazarus.errors import RemoteError
from lazarus.model import Observation
from lazarus.playbooks.actions import Action, Params, StepResult, register
from lazarus.playbooks.context import StepContext
from lazarus.sources.http import ProbeTarget, probe
from lazarus.sources.probes import Instance, check


class WaitParams(Params):
    duration: Duration


@register
class Wait(Action):
    name = "wait"
    acts = False
    Params = WaitParams

    def run(self, ctx: StepContext, params: WaitParams) -> StepResult:
        ctx.sleep(params.duration)
        return StepResult(f"waited {params.duration:g}s")


class NotifyParams(Params):
    message: str


@register
class Notify(Action):
    name = "notify"
    acts = False
    Params = NotifyParams

    def run(self, ctx: StepContext, params: NotifyParams) -> StepResult:
        if ctx.notify is None:
            raise ctx.fail("no notifier in this run")
        ctx.notify(params.message)
        return StepResult(f"notified: {params.message}")


class HttpCheckParams(Params):
    url: str = ""
    expect_status: int = 200
    within: Duration = 30.0
    interval: Duration = Field(1.0, gt=0)
    timeout: Duration = Field(2.0, gt=0)


def poll(ctx: StepContext, params: HttpCheckParams, url: str) -> StepResult:
    """GET ``url`` until it answers ``expect_status`` or ``within`` passes (bounded attempts)."""
    target = ProbeTarget(
        ctx.incident.host, ctx.incident.service, url, params.timeout, params.expect_status
    )
    until_ok(
        ctx,
        params.within,
        params.interval,
        lambda: probe(target),
        f"{url} did not answer {params.expect_status}",
    )
    return StepResult(f"{url} answered {params.expect_status}")


def until_ok(
    ctx: StepContext,
    within: float,
    interval: float,
    attempt: Callable[[], Observation],
    failure: str,
) -> Observation:
    """Repeat ``attempt`` every ``interval`` until it is ok (returned) or ``within`` passes
    (ActionError: ``failure`` and the last attempt's detail)."""
    deadline = ctx.clock() + within
    detail = ""
    for _ in range(1 + int(within / max(interval, 0.001))):
        seen = attempt()
        if seen.ok:
            return seen
        detail = seen.detail
        if ctx.clock() + interval > deadline:
            break
        ctx.sleep(interval)
    raise ctx.fail(f"{failure} within {within:g}s (last: {detail})")


def own_probe(ctx: StepContext) -> tuple[list[str], Callable[[], Observation]]:
    """What the incident's own symptom is checked by (words for a plan) and the check: the
    instance's probe of whatever kind, or for a host-level incident a command over SSH."""
    host = ctx.host()
    if not ctx.incident.service:
        return ["ssh", host.name, *REACH_COMMAND], lambda: reach(ctx, host)
    instance = Instance(host, ctx.incident.service, ctx.service().probe)
    probe = instance.probe
    words = {
        "http": lambda: ["GET", instance.fill(probe.http or "")],
        "tcp": lambda: ["connect", instance.fill(probe.tcp or "")],
        "postgres": lambda: ["postgres", instance.service, "SELECT 1"],
        "command": lambda: ["ssh", host.name, *(probe.command or [])],
    }[probe.kind]()
    return words, lambda: check(instance, executor=ctx.executor)


def reach(ctx: StepContext, host: Host) -> Observation:
    """Whether SSH runs a command on ``host`` now, as an Observation."""
    started = ctx.clock()
    try:
        ctx.remote().run(host, REACH_COMMAND, timeout=ctx.timeout)
    except RemoteError as exc:
        return Observation(host.name, "", False, f"unreachable: {exc}", started)
    return Observation(host.name, "", True, "SSH answers", started)


@register
class HttpCheck(Action):
    """GET ``url`` until it answers ``expect_status``; with no ``url``, the incident's own
    probe (of whatever kind: a database's ``SELECT 1``, a TCP connect) until it passes."""

    name = "http.check"
    acts = False
    Params = HttpCheckParams

    def describe(self, ctx: StepContext, params: HttpCheckParams) -> tuple[str, list[str]]:
        if params.url:
            return ("local", ["GET", params.url, f"expect {params.expect_status}"])
        words, _ = own_probe(ctx)
        return ("local", [*words, f"expect {params.expect_status}" if words[0] == "GET" else "ok"])

    def run(self, ctx: StepContext, params: HttpCheckParams) -> StepResult:
        if params.url:
            return poll(ctx, params, params.url)
        return _own(ctx, params.within, params.interval)


def _own(ctx: StepContext, within: float, interval: float) -> StepResult:
    words, attempt = own_probe(ctx)
    until_ok(ctx, within, interval, attempt, f"{' '.join(words)} did not pass")
    return StepResult(f"{' '.join(words)}: passes")


class ClearedParams(Params):
    within: Duration = 30.0
    interval: Duration = Field(1.0, gt=0)


@register
class SymptomCleared(Action):
    """The incident's own probe passes again (for a host: SSH answers): most playbooks' verify."""

    name = "symptom.cleared"
    acts = False
    Params = ClearedParams

    def describe(self, ctx: StepContext, params: ClearedParams) -> tuple[str, list[str]]:
        return ("local", [*own_probe(ctx)[0], "expect probe ok"])

    def run(self, ctx: StepContext, params: ClearedParams) -> StepResult:
        return _own(ctx, params.within, params.interval)


class NestedParams(Params):
    playbook: str


@register
class RunPlaybook(Action):
    name = "run_playbook"
    acts = False
    idempotent = False  # the inner playbook's own steps may not be
    Params = NestedParams

    def run(self, ctx: StepContext, params: NestedParams) -> StepResult:
        if ctx.run_playbook is None:
            raise ctx.fail("nested playbooks are not available in this run")
        result = ctx.run_playbook(params.playbook)
        return StepResult(f"playbook {params.playbook!r}: {result.status}")
