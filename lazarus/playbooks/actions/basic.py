"""Actions that need no transport of their own: wait, notify, HTTP checks, nested playbooks."""

from __future__ import annotations

from pydantic import Field

from lazarus.config import Duration
from lazarus.playbooks.actions import Action, Params, StepResult, register
from lazarus.playbooks.context import StepContext
from lazarus.sources.http import ProbeTarget, probe


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
    deadline = ctx.clock() + params.within
    attempts = 1 + int(params.within / max(params.interval, 0.001))
    detail = ""
    for _ in range(attempts):
        seen = probe(target)
        if seen.ok:
            return StepResult(f"{url} answered {params.expect_status}")
        detail = seen.detail
        if ctx.clock() + params.interval > deadline:
            break
        ctx.sleep(params.interval)
    raise ctx.fail(
        f"{url} did not answer {params.expect_status} within {params.within:g}s (last: {detail})"
    )


def probe_url(ctx: StepContext, url: str) -> str:
    """The step's URL, or the incident's service probe filled for the incident's host."""
    if url:
        return url
    host = ctx.host()
    return ctx.service().probe.http.format(host=host.name, address=host.address)


@register
class HttpCheck(Action):
    name = "http.check"
    acts = False
    Params = HttpCheckParams

    def describe(self, ctx: StepContext, params: HttpCheckParams) -> tuple[str, list[str]]:
        return ("local", ["GET", probe_url(ctx, params.url), f"expect {params.expect_status}"])

    def run(self, ctx: StepContext, params: HttpCheckParams) -> StepResult:
        return poll(ctx, params, probe_url(ctx, params.url))


class ClearedParams(Params):
    within: Duration = 30.0
    interval: Duration = Field(1.0, gt=0)


@register
class SymptomCleared(Action):
    """The incident's own probe passes again: the verify step of most playbooks."""

    name = "symptom.cleared"
    acts = False
    Params = ClearedParams

    def describe(self, ctx: StepContext, params: ClearedParams) -> tuple[str, list[str]]:
        return ("local", ["GET", probe_url(ctx, ""), "expect probe ok"])

    def run(self, ctx: StepContext, params: ClearedParams) -> StepResult:
        probe_cfg = ctx.service().probe
        check = HttpCheckParams(
            within=params.within,
            interval=params.interval,
            timeout=probe_cfg.timeout,
            expect_status=probe_cfg.expect_status,
        )
        return poll(ctx, check, probe_url(ctx, ""))


class NestedParams(Params):
    playbook: str


@register
class RunPlaybook(Action):
    name = "run_playbook"
    acts = False
    Params = NestedParams

    def run(self, ctx: StepContext, params: NestedParams) -> StepResult:
        if ctx.run_playbook is None:
            raise ctx.fail("nested playbooks are not available in this run")
        result = ctx.run_playbook(params.playbook)
        return StepResult(f"playbook {params.playbook!r}: {result.status}")
