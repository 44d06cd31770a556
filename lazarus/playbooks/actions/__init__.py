"""The action registry: one class per action, each declaring its parameters and its risk.

The playbook schema's step union is generated from this registry, so adding an action module
is the whole work of adding an action (the apprise habit: one module per plugin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from lazarus.playbooks.context import StepContext


InventoryRef = Annotated[
    str,
    Field(
        pattern=r"^(\{\{[^{}]*\}\}|[A-Za-z0-9][A-Za-z0-9_.-]*)$",
        max_length=64,
        description="an inventory name, or one placeholder filled with one",
    ),
]
"""A host, service or database parameter: a name as the inventory spells it, or exactly one
``{{ placeholder }}``. Filled values are checked again, so a label can never smuggle in an
option (``-oProxyCommand=...``), a path or a second word; the action then looks the name up in
the inventory, which is the only authority on targets."""


class Params(BaseModel):
    """Base of every action's ``with:`` block: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class StepResult:
    """What one step did, for the audit trail and the flow's artifacts."""

    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class Action:
    """One kind of step. Subclasses set ``name``, ``Params``, ``destructive``, ``acts``
    (``idempotent`` where it differs from ``not acts``) and ``run``. ``acts``: each try changes
    the target (a restart, a rollback), so the per-target circuit breaker counts it; checks,
    waits and messages do not."""

    name: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    destructive: ClassVar[bool] = False
    acts: ClassVar[bool] = True

    @property
    def idempotent(self) -> bool:
        """Running it again after its run died mid-way does no harm, so another run may take
        over there (lazarus.playbooks.leases): reads, waits and messages; an action that
        changes its target says so itself."""
        return not self.acts

    def describe(self, ctx: StepContext, params: Any) -> tuple[str, list[str]]:
        """(host, argv) this step would touch, for dry-run plans; changes nothing."""
        return ("local", [self.name, *(f"{k}={v}" for k, v in params.model_dump().items())])

    def run(self, ctx: StepContext, params: Any) -> StepResult:
        raise NotImplementedError


REGISTRY: dict[str, Action] = {}


def register(cls: type[Action]) -> type[Action]:
    """Class decorator: make ``cls`` available to playbooks under ``cls.name``."""
    REGISTRY[cls.name] = cls()
    return cls


def load_builtin() -> dict[str, Action]:
    """Import the shipped action modules (each registers itself) and return the registry."""
    from lazarus.playbooks.actions import basic, db, dependency, pitr, ssh  # noqa: F401

    return REGISTRY


Notifier = Callable[[str], None]
