"""The playbook file format: strict pydantic models, the step union generated from the registry.

Loading goes through lazarus.yamlfile, so a bad playbook fails ``lazarus playbook check`` with
``file:line: field: reason``, like a bad config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from lazarus.config import Duration, Matchers, Name, RunWindow
from lazarus.errors import ConfigError
from lazarus.notify.route import parse_matchers
from lazarus.playbooks.actions import Action, load_builtin
from lazarus.playbooks.template import names_in
from lazarus.symptoms import guaranteed, labels_named, promised
from lazarus.yamlfile import ConfigErrorGroup, Located, read_yaml, validate

SCOPES = ("incident", "service", "host", "steps")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StepBase(_Strict):
    id: Name
    timeout: Annotated[Duration, Field(gt=0)] | None = None
    retries: int = Field(0, ge=0, le=10)
    retry_delay: Duration | list[Duration] = 1.0
    retry_on: Literal["transient", "never"] = "transient"
    compensate: AnyStep | None = None
    when: Matchers = Field([], description="matchers on the incident's facts; empty = always")

    @property
    def params(self) -> BaseModel:
        return self.with_

    @property
    def impl(self) -> Action:
        return ACTIONS[self.action]

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (0-based): the list's entry, or doubling."""
        if isinstance(self.retry_delay, list):
            return (
                self.retry_delay[min(attempt, len(self.retry_delay) - 1)]
                if self.retry_delay
                else 0.0
            )
        return self.retry_delay * 2**attempt

    @model_validator(mode="after")
    def _names(self) -> StepBase:
        for name in names_in(self.params.model_dump()):
            if name.split(".")[0] not in SCOPES:
                raise Located(f"unknown name {name!r} (use {', '.join(SCOPES)})", ("with",))
        return self


def _step_model(action: Action) -> type[StepBase]:
    return create_model(
        f"Step_{action.name.replace('.', '_')}",
        __base__=StepBase,
        action=(Literal[action.name], ...),  # type: ignore[valid-type]
        with_=(action.Params, Field(default_factory=_default(action.Params), alias="with")),
    )


def _default(params: type[BaseModel]) -> Any:
    def build() -> BaseModel:
        return params()

    return build


ACTIONS = load_builtin()
_MODELS = [_step_model(a) for a in ACTIONS.values()]
AnyStep = Annotated[Union[tuple(_MODELS)], Field(discriminator="action")]  # noqa: UP007
for _model in (StepBase, *_MODELS):
    _model.model_rebuild(_types_namespace={"AnyStep": AnyStep})
TAGS = frozenset(ACTIONS)


class Trigger(_Strict):
    matchers: Matchers = Field(min_length=1)
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)


class Limits(_Strict):
    per_target: RunWindow | None = None
    concurrency: int = Field(1, ge=1)
    fleet_max_percent: float | None = Field(None, gt=0, le=100)


class Approval(_Strict):
    required: Literal["auto", "always", "never"] = "auto"
    timeout: Duration = Field(900.0, gt=0)
    on_timeout: Literal["abort"] = "abort"
    # who may approve (names as they sign the form or `lazarus approve --as`); empty: anyone
    approvers: list[Annotated[str, Field(min_length=1, max_length=100)]] = []


class Playbook(_Strict):
    version: Literal[1]
    name: Name
    description: str = ""
    trigger: Trigger
    limits: Limits = Field(default_factory=Limits)
    approval: Approval = Field(default_factory=Approval)
    steps: list[AnyStep] = Field(min_length=1)  # type: ignore[valid-type]
    verify: list[AnyStep] = []  # type: ignore[valid-type]
    on_failure: list[AnyStep] = []  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _rules(self) -> Playbook:
        seen: set[str] = set()
        snapshotted: set[str] = set()
        labels = guaranteed(self.trigger.matchers)
        for block in ("steps", "verify", "on_failure"):
            for i, step in enumerate(getattr(self, block)):
                self._labels_set(step, labels, (block, i))
                if step.id in seen:
                    raise Located(f"duplicate step id {step.id!r}", (block, i, "id"))
                seen.add(step.id)
                if step.impl.destructive and self.approval.required == "never":
                    raise Located(
                        f"{step.action} is destructive: approval.required cannot be 'never'",
                        (block, i, "action"),
                    )
                db = getattr(step.params, "database", None)
                if step.action == "db.snapshot":
                    snapshotted.add(db)
                if step.action == "db.restore" and db not in snapshotted:
                    raise Located(
                        f"db.restore of {db!r} needs an earlier db.snapshot step of it",
                        (block, i, "action"),
                    )
        return self

    def _labels_set(self, step: StepBase, labels: frozenset[str], loc: tuple) -> None:
        """Every ``incident.labels.X`` the step names is one its trigger's symptoms promise."""
        named = names_in(step.params.model_dump())
        if step.compensate is not None:
            named += names_in(step.compensate.params.model_dump())
        for label in labels_named(named):
            if label not in labels:
                raise Located(
                    f"names incident.labels.{label}, which {self._promises()}", (*loc, "with")
                )

    def _promises(self) -> str:
        """What the trigger's symptoms set, for the error message."""
        symptoms = [m.value for t in self.trigger.matchers for m in parse_matchers(t)
                    if m.name == "symptom" and m.op == "="]  # fmt: skip
        if not symptoms:
            return "the trigger does not promise: match a symptom that sets it, or the label itself"
        sets = "; ".join(
            f"{s} sets {', '.join(sorted(promised(s))) or 'no labels'}" for s in symptoms
        )
        return f"the trigger's symptoms never set ({sets}; see lazarus/symptoms.py)"

    @property
    def destructive(self) -> bool:
        return any(s.impl.destructive for s in self.steps)

    @property
    def on_cause(self) -> bool:
        """Whether the trigger matches on the diagnosed cause (its confidence then counts)."""
        return any(m.name == "cause" for t in self.trigger.matchers for m in parse_matchers(t))

    def needs_approval(self, confidence: float = 1.0) -> bool:
        """Whether a person must approve before the first destructive step runs."""
        if self.approval.required != "auto":
            return self.approval.required == "always"
        return self.destructive or confidence < self.trigger.min_confidence


def load_playbook(path: Path) -> Playbook:
    """Read and validate one playbook file; its ``name`` must equal the file's stem."""
    data, lines = read_yaml(path)
    book = validate(Playbook, data, lines, path, tags=TAGS)
    if book.name != path.stem:
        raise ConfigError(
            f"name {book.name!r} must equal the file name {path.stem!r}",
            path=str(path),
            line=lines.find(("name",)),
            field="name",
        )
    return book


def load_dir(folder: Path) -> dict[str, Playbook]:
    """Every ``*.yaml`` playbook of ``folder`` by name; all files' errors together."""
    books: dict[str, Playbook] = {}
    errors: list[ConfigError] = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            books[path.stem] = load_playbook(path)
        except ConfigErrorGroup as group:
            errors.extend(group.errors)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise ConfigErrorGroup(errors)
    return books
