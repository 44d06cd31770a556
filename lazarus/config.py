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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from lazarus.errors import ConfigError, SecretError
from lazarus.notify.route import parse_matchers
from lazarus.secrets import is_reference, resolve
from lazarus.yamlfile import ConfigErrorGroup, Located, read_yaml, validate

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


class DatabaseSnapshots(Strict):
    dir: str = Field(description="folder of the snapshot files (relative to the config file)")
    keep: int = Field(7, ge=1, description="snapshots kept by retention, newest first")


class Database(Strict):
    """A database Lazarus may snapshot and restore (whole database, never single tables)."""

    name: Name
    kind: Literal["postgres", "sqlite"]
    dsn: str = Field(description="secret reference (env:ORDERS_DSN) or a libpq URI / sqlite path")
    snapshots: DatabaseSnapshots
    check: str | None = Field(None, description="SQL returning one truthy value when data is sane")
    tables: list[str] = Field([], description="tables whose row counts are checked and reported")


class Inventory(Strict):
    ssh: SshSettings
    hosts: list[Host]
    services: list[Service] = []
    databases: list[Database] = []

    @field_validator("databases")
    @classmethod
    def _unique_databases(cls, databases: list[Database]) -> list[Database]:
        _reject_duplicates([d.name for d in databases], "database")
        return databases

    @field_validator("hosts")
    @classmethod
    def _unique_hosts(cls, hosts: list[Host]) -> list[Host]:
        _reject_duplicates([h.name for h in hosts], "host")
        return hosts

    @field_validator("services")
    @classmethod
    def _unique_services(cls, services: list[Service]) -> list[Service]:
        _reject_duplicates([s.name for s in services], "service")
        return services

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

    @field_validator("matchers")
    @classmethod
    def _matchers_parse(cls, matchers: list[str]) -> list[str]:
        for i, text in enumerate(matchers):
            try:
                parse_matchers(text)
            except ConfigError as exc:
                raise Located(exc.reason, (i,)) from None
        return matchers


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
            if self.route.matchers:
                raise Located("the root route matches everything; it takes no matchers",
                              ("route", "matchers"))
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
        refs += [(f"inventory.databases[{i}].dsn", d.dsn)
                 for i, d in enumerate(self.inventory.databases)]
        return [(field, ref) for field, ref in refs if is_reference(ref)]


def _reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise Located(f"duplicate {what} name {name!r}", (index, "name"))
        seen.add(name)


def _check_route_receivers(route: Route, names: set[str], loc: tuple[str | int, ...]) -> None:
    if route.receiver is not None and route.receiver not in names:
        raise Located(f"receiver {route.receiver!r} is not defined in notify.receivers",
                       (*loc, "receiver"))
    for i, child in enumerate(route.routes):
        _check_route_receivers(child, names, (*loc, "routes", i))


# --- loading ----------------------------------------------------------------------------------

_SOURCE_TAGS = frozenset({"prometheus", "ssh_metrics"})


def load_config(path: str | Path, *, check_secrets: bool = False) -> Config:
    """Read and validate a config file; raise ConfigErrorGroup listing every problem found."""
    path = Path(path)
    data, lines = read_yaml(path)
    config = validate(Config, {**data, "base_dir": path.resolve().parent}, lines, path,
                      tags=_SOURCE_TAGS)
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
