"""Waiting for what a service needs: the step a dependant runs instead of a restart storm.

When diagnosis ranks a dependency first (``cause="dependency_down"``), the dependency's own
incident restarts it on the host where it runs (inventory, never the dependant's host); the
dependant only waits until every direct dependency answers its own probe again, then checks
its own health. So one stopped database is one restart, not one per dependant host, and no
dependant escalates while the database is being brought back.
"""

from __future__ import annotations

from pydantic import Field

from lazarus.config import Duration
from lazarus.playbooks.actions import Action, Params, StepResult, register
from lazarus.playbooks.actions.basic import until_ok
from lazarus.playbooks.context import StepContext
from lazarus.sources.probes import Instance, check


class WaitParams(Params):
    within: Duration = Field(120.0, gt=0)
    interval: Duration = Field(1.0, gt=0)


def dependencies(ctx: StepContext) -> list[Instance]:
    """Every instance of the incident's service's direct dependencies, on their own hosts."""
    assert ctx.config is not None
    inventory = ctx.config.inventory
    found = []
    for name in ctx.service().depends_on:
        needed = inventory.service(name)
        found += [Instance(h, name, needed.probe) for h in inventory.hosts_of(needed)]
    return found


@register
class DependencyHealthy(Action):
    """Wait until every direct dependency of the incident's service passes its own probe."""

    name = "dependency.healthy"
    Params = WaitParams

    def describe(self, ctx: StepContext, params: WaitParams) -> tuple[str, list[str]]:
        names = [f"{i.service}@{i.host.name}" for i in dependencies(ctx)]
        return ("local", ["wait for", *names, f"within {params.within:g}s"])

    def run(self, ctx: StepContext, params: WaitParams) -> StepResult:
        needed = dependencies(ctx)
        if not needed:
            raise ctx.fail(f"{ctx.incident.service} has no depends_on to wait for")

        def attempt():
            seen = [check(i, executor=ctx.executor) for i in needed]
            return next((o for o in seen if not o.ok), seen[0])

        names = ", ".join(f"{i.service}@{i.host.name}" for i in needed)
        until_ok(ctx, params.within, params.interval, attempt, f"{names} did not recover")
        return StepResult(f"{names} healthy again")
