"""The YAML configuration as pydantic models, loaded with errors that name file, line and field.

One file describes the fleet (inventory), where metrics come from (sources), what counts as a
fault (detectors), who hears about it (notify) and how Lazarus may act (recovery).
Relative paths in the file are taken from the file's own folder, so a config can move with
its keys and state.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lazarus.errors import ConfigError, SecretError
from lazarus.secrets import is_reference, resolve

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def parse_duration(value: Any) -> float:
    """``30s``, ``5m``, ``1h``, ``250ms`` or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit: 30s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use 30s, 5m, 1h, 250ms)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=_NAME, max_length=64)]


class Strict(BaseModel):
    """Every config model refuses keys it does not know: a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SshSettings(Strict):
    user: str = "root"
    port: int = Field(22, ge=1, le=65535)
    key: str = Field(description="path of a private key file, or a secret reference to its text")
    known_hosts: str | None = None
    host_key_policy: Literal["reject", "trust_on_first_use"] = "reject"
    connect_timeout: Duration = 5.0
    command_timeout: Duration = 30.0
    output_limit: int = Field(65536, ge=1024)


class Host(Strict):
    name: Name
    address: str
    port: int | None = Field(None, ge=1, le=65535)
    labels: dict[str, str] = {}


class Probe(Strict):
    http: str = Field(description="URL template; {host} and {address} are filled per host")
    timeout: Duration = 2.0
    expect_status: int = 200


class Control(Strict):
    """How a service is started and stopped on its hosts.

    ``supervisor`` and ``systemd`` use their own tools; ``command`` takes templates. In every
    template ``{service}``, ``{unit}`` and ``{host}`` are filled in shell-quoted.
    """

    kind: Literal["systemd", "supervisor", "command"] = "systemd"
    unit: str | None = None
    config: str | None = Field(None, description="supervisord.conf path (template)")
    restart: str | None = None
    start: str | None = None
    stop: str | None = None
    status: str | None = None

    @model_validator(mode="after")
    def _templates_for_command(self) -> Control:
        if self.kind == "command" and not self.restart:
            raise ValueError("control kind 'command' needs a 'restart' template")
        return self


class Service(Strict):
    name: Name
    hosts: dict[str, str] = Field({}, description="label selector; empty selects every host")
    probe: Probe
    control: Control = Field(default_factory=Control)
    labels: dict[str, str] = {}


class Inventory(Strict):
    ssh: SshSettings
    hosts: list[Host]
    services: list[Service] = []

    @field_validator("hosts", "services")
    @classmethod
    def _unique_names(cls, items: list[Host] | list[Service]) -> list[Any]:
        _reject_duplicates([i.name for i in items], "host" if items and isinstance(items[0], Host) else "service")
        return items

    def hosts_of(self, service: Service) -> list[Host]:
        """The hosts whose labels match the service's selector."""
        return [
            h for h in self.hosts if all(h.labels.get(k) == v for k, v in service.hosts.items())
        ]

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


class PrometheusSource(Strict):
    kind: Literal["prometheus"]
    url: str
    queries: dict[Name, str]
    timeout: Duration = 5.0


class SshMetricsSource(Strict):
    kind: Literal["ssh_metrics"]
    hosts: dict[str, str] = {}


Source = Annotated[PrometheusSource | SshMetricsSource, Field(discriminator="kind")]


class ThresholdRule(Strict):
    series: Name
    kind: Literal["threshold"] = "threshold"
    above: float | None = None
    below: float | None = None
    for_: int = Field(1, alias="for", ge=1, description="consecutive cycles before it fires")
    symptom: Name | None = None
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _a_bound(self) -> ThresholdRule:
        if self.above is None and self.below is None:
            raise ValueError("a threshold rule needs 'above' or 'below'")
        return self


class Detectors(Strict):
    probe_failures: int = Field(2, ge=1, description="failed probes in a row before service_down")
    rules: list[ThresholdRule] = []


class Receiver(Strict):
    name: Name
    urls: list[str] = Field(min_length=1)


class Route(Strict):
    receiver: str | None = None
    matchers: list[str] = []
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = []


class Notify(Strict):
    receivers: list[Receiver] = []
    route: Route | None = None
    retries: int = Field(3, ge=0)
    retry_delay: Duration = 1.0
    timeout: Duration = 10.0

    @field_validator("receivers")
    @classmethod
    def _unique_receivers(cls, receivers: list[Receiver]) -> list[Receiver]:
        _reject_duplicates([r.name for r in receivers], "receiver")
        return receivers

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Notify:
        if self.route is not None:
            _check_route_receivers(self.route, {r.name for r in self.receivers}, ("route",))
        return self


class Recovery(Strict):
    enabled: bool = True
    dry_run: bool = False
    retries: int = Field(3, ge=0)
    retry_delay: Duration = 1.0
    verify_within: Duration = 30.0
    verify_interval: Duration = 1.0


class Watch(Strict):
    interval: Duration = 15.0


class State(Strict):
    path: str = ".lazarus/lazarus.db"


class Prefect(Strict):
    ui_url: str | None = Field(None, description="base URL of the Prefect UI, for links")


class Config(Strict):
    inventory: Inventory
    sources: list[Source] = []
    detectors: Detectors = Field(default_factory=Detectors)
    notify: Notify = Field(default_factory=Notify)
    recovery: Recovery = Field(default_factory=Recovery)
    watch: Watch = Field(default_factory=Watch)
    state: State = Field(default_factory=State)
    prefect: Prefect = Field(default_factory=Prefect)
    base_dir: Path = Field(Path("."), exclude=True)

    def path(self, value: str) -> Path:
        """A path from the config, relative ones taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret_refs(self) -> list[tuple[str, str]]:
        """(field path, reference) of every secret reference the config holds."""
        refs = [("inventory.ssh.key", self.inventory.ssh.key)]
        for i, receiver in enumerate(self.notify.receivers):
            refs += [(f"notify.receivers[{i}].urls[{j}]", u) for j, u in enumerate(receiver.urls)]
        return [(field, ref) for field, ref in refs if is_reference(ref)]


def _reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise _Located(f"duplicate {what} name {name!r}", (index, "name"))
        seen.add(name)


def _check_route_receivers(route: Route, names: set[str], loc: tuple[str | int, ...]) -> None:
    if route.receiver is not None and route.receiver not in names:
        raise _Located(f"receiver {route.receiver!r} is not defined in notify.receivers",
                       (*loc, "receiver"))
    for i, child in enumerate(route.routes):
        _check_route_receivers(child, names, (*loc, "routes", i))


class _Located(ValueError):
    """A validator error that knows the path below its model where it belongs."""

    def __init__(self, message: str, loc: tuple[str | int, ...]):
        super().__init__(message)
        self.loc = loc


# --- loading ----------------------------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """Keeps each node's line so a validation error can point at it."""


def _compose_lines(node: yaml.Node) -> Any:
    """Mirror of the document where every mapping/sequence also knows its children's lines."""
    if isinstance(node, yaml.MappingNode):
        return _Lines(
            node.start_mark.line + 1,
            {k.value: (v.start_mark.line + 1, k.start_mark.line + 1, _compose_lines(v))
             for k, v in node.value if isinstance(k, yaml.ScalarNode)},
        )
    if isinstance(node, yaml.SequenceNode):
        return _Lines(
            node.start_mark.line + 1,
            {i: (v.start_mark.line + 1, v.start_mark.line + 1, _compose_lines(v))
             for i, v in enumerate(node.value)},
        )
    return None


class _Lines:
    def __init__(self, line: int, children: dict[Any, tuple[int, int, Any]]):
        self.line, self.children = line, children

    def find(self, loc: tuple[Any, ...]) -> int:
        """Line of the deepest element of ``loc`` present in the document."""
        node, line = self, self.line
        for part in loc:
            if not isinstance(node, _Lines) or part not in node.children:
                break
            value_line, key_line, node = node.children[part]
            line = key_line if node is None else value_line
            if node is None:
                break
        return line


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union tags (``prometheus`` in sources.0.prometheus.url) from a location."""
    return tuple(p for p in loc if not (isinstance(p, str) and p in ("prometheus", "ssh_metrics")))


def load_config(path: str | Path, *, check_secrets: bool = False) -> Config:
    """Read and validate a config file; raise ConfigErrorGroup listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=str(path), line=line) from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=str(path), line=1)
    lines = _compose_lines(node)
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigErrorGroup(_errors_from(exc, lines, str(path))) from None
    if check_secrets:
        problems = []
        for field, ref in config.secret_refs():
            try:
                resolve(ref)
            except SecretError as exc:
                loc = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", field) if p)
                problems.append(ConfigError(str(exc), path=str(path), line=lines.find(loc),
                                            field=field))
        if problems:
            raise ConfigErrorGroup(problems)
    return config


def _errors_from(exc: ValidationError, lines: _Lines, path: str) -> list[ConfigError]:
    errors = []
    for err in exc.errors():
        loc = _yaml_loc(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _Located):
            loc = loc + cause.loc
            message = str(cause)
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "missing":
            message = f"missing required field {loc[-1]!r}"
        errors.append(ConfigError(message, path=path, line=lines.find(loc),
                                  field=_field_path(loc)))
    return errors


class ConfigErrorGroup(ConfigError):
    """Every problem in one config file, each a ConfigError naming its line and field."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.reason, path=first.path, line=first.line, field=first.field)
        self.args = ("\n".join(str(e) for e in errors),)
