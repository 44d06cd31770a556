"""The YAML configuration as pydantic models, loaded with errors that name file, line and field.

One file describes the fleet (inventory), where metrics come from (sources), what counts as a
fault (detectors), who hears about it (notify) and how Lazarus may act (recovery).
Relative paths in the file are taken from the file's own folder, so a config can move with
its keys and state.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lazarus import commandline
from lazarus.db import is_url
from lazarus.errors import ConfigError, SecretError
from lazarus.notify.route import parse_matchers
from lazarus.notify.windows import parse_cron
from lazarus.secrets import is_reference, resolve
from lazarus.yamlfile import ConfigErrorGroup, Lines, Located, read_yaml, validate

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_LONGEST = 366 * 86400.0  # a finite bound: no wait, window or timeout past a year


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
    if not math.isfinite(seconds) or seconds > _LONGEST:
        raise ValueError(f"a duration is at most {_LONGEST / 86400:g} days")
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
    passphrase: str | None = Field(
        None,
        description="secret reference (env:NAME, secret:NAME) to an encrypted key's passphrase",
    )
    known_hosts: str | None = None
    host_key_policy: Literal["reject", "trust_on_first_use"] = "reject"
    connect_timeout: Duration = Field(5.0, gt=0)
    command_timeout: Duration = Field(30.0, gt=0)
    output_limit: int = Field(65536, ge=1024)

    @field_validator("passphrase")
    @classmethod
    def _passphrase_is_reference(cls, value: str | None) -> str | None:
        if value is not None and not is_reference(value):
            raise ValueError("the passphrase must be a secret reference (env:NAME, secret:NAME)")
        return value


class Host(Strict):
    name: Name
    address: str = Field(
        pattern=r"^[A-Za-z0-9\[][A-Za-z0-9_.:%\[\]-]*$",
        max_length=255,
        description="IP or DNS name; never starts with '-', so it can never be an option",
    )
    port: int | None = Field(None, ge=1, le=65535)
    labels: dict[str, str] = {}
    clean_paths: list[str] = Field([], description="folders disk.clean may empty on this host")


PROBE_KINDS = ("http", "tcp", "postgres", "command")


def _url_template(template: str) -> str:
    """A probe template may name only {host} and {address}; a typo is an error now, not in
    every cycle."""
    commandline.check_template([template], commandline.URL)
    try:
        template.format(host="h", address="a")
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"not a URL template ({exc}); write braces as {{{{ }}}}") from None
    return template


Template = Annotated[str, AfterValidator(_url_template)]


class Probe(Strict):
    """How one instance is checked every cycle: exactly one of the four kinds.

    ``http`` GETs a URL and wants ``expect_status``; ``tcp`` connects to ``address:port``;
    ``postgres`` connects to a DSN (a secret reference, e.g. ``env:ORDERS_DSN``, or a libpq
    URI template) and runs ``SELECT 1``; ``command`` runs an argv on the host over SSH and
    wants exit code 0. In templates ``{host}`` and ``{address}`` are the instance's host.
    """

    http: Template | None = Field(None, description="URL template")
    tcp: Template | None = Field(None, description="'{address}:5432'")
    postgres: str | None = Field(None, description="DSN: secret reference or libpq URI template")
    command: list[str] | None = Field(None, min_length=1, description="argv, run over SSH")
    timeout: Duration = Field(2.0, gt=0)
    expect_status: int = Field(200, ge=100, le=599)

    @field_validator("command")
    @classmethod
    def _argv_template(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            commandline.check_template(value, commandline.URL)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Probe:
        given = [k for k in PROBE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            found = f"; found {', '.join(given)}" if given else ""
            raise ValueError(f"a probe needs exactly one of {', '.join(PROBE_KINDS)}{found}")
        if self.tcp is not None and not re.fullmatch(r".+:(\d+|\{[a-z]+\})", self.tcp):
            raise Located("a tcp probe is 'address:port', e.g. '{address}:5432'", ("tcp",))
        if self.postgres is not None and not is_reference(self.postgres):
            _url_template(self.postgres)
        return self

    @property
    def kind(self) -> str:
        return next(k for k in PROBE_KINDS if getattr(self, k) is not None)


class Control(Strict):
    """How a service is started and stopped on its hosts.

    ``supervisor``, ``systemd`` and ``docker`` (``unit`` = the container) use their own tools;
    ``command`` takes templates. In every template ``{service}``, ``{unit}`` and ``{host}`` are
    filled in shell-quoted.
    """

    kind: Literal["systemd", "supervisor", "docker", "command"] = "systemd"
    unit: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9@:._\\-]*$", max_length=256)
    config: str | None = Field(None, description="supervisord.conf path (template)")
    restart: str | None = None
    start: str | None = None
    stop: str | None = None
    status: str | None = None

    @field_validator("config", "restart", "start", "stop", "status")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            commandline.check_template(value, commandline.CONTROL)
        return value

    @model_validator(mode="after")
    def _templates_for_command(self) -> Control:
        if self.kind == "command" and not self.restart:
            raise ValueError("control kind 'command' needs a 'restart' template")
        return self


class Releases(Strict):
    """Where a service's releases live on its hosts: one folder per release and a link."""

    dir: str = Field(description="absolute folder on each host; {host} is filled")
    current: str = Field("current", pattern=r"^[A-Za-z0-9._-]+$", description="the link's name")

    def folder(self, host: str) -> str:
        return self.dir.replace("{host}", host)


class Service(Strict):
    name: Name
    hosts: dict[str, str] = Field({}, description="label selector; empty selects every host")
    probe: Probe
    control: Control = Field(default_factory=Control)
    labels: dict[str, str] = {}
    depends_on: list[Name] = Field(
        [], description="services and databases this one needs (the diagnosis graph)"
    )
    releases: Releases | None = Field(None, description="release folder: changes + rollback")
    watch_files: list[str] = Field([], description="files whose content change is a change")
    clean_paths: list[str] = Field([], description="folders disk.clean may empty on its hosts")


class DatabaseSnapshots(Strict):
    dir: str = Field(description="folder of the snapshot files (relative to the config file)")
    keep: int = Field(7, ge=1, description="newest snapshots kept by retention")
    daily: int = Field(0, ge=0, description="also keep the newest snapshot of each of N days")
    weekly: int = Field(0, ge=0, description="also keep the newest snapshot of each of N weeks")
    schedule: str | None = Field(None, description="cron (5 fields, UTC) of the snapshot run")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str | None) -> str | None:
        if schedule is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(schedule, datetime.now(UTC))
            except CronSimError as exc:
                raise ValueError(f"schedule {schedule!r} is not a cron expression: {exc}") from None
        return schedule


class DbCheck(Strict):
    """One SQL check the watch runs on the live database (read-only, with a statement timeout).

    The query returns one number or boolean; a bound it breaks raises ``db_corrupt``. A query
    that errors or times out is a failed check (reported with its error), never ``db_corrupt``.
    """

    name: Name
    sql: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    equals: float | bool | None = None
    max_drop: str | None = Field(None, description="largest fall between two runs: 10% or 500")
    interval: Duration = Field(60.0, gt=0, description="how often the watch runs this check")
    timeout: Duration = Field(5.0, gt=0, description="statement timeout of the query")

    @field_validator("max_drop")
    @classmethod
    def _drop(cls, value: str | None) -> str | None:
        if value is not None:
            parse_drop(value)
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> DbCheck:
        if (self.min, self.max, self.equals, self.max_drop) == (None, None, None, None):
            raise ValueError(f"check {self.name!r} needs a bound: min, max, equals or max_drop")
        return self


def parse_drop(value: str) -> tuple[float, bool]:
    """``10%`` -> (10.0, True); ``500`` -> (500.0, False)."""
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        amount = float(text.removesuffix("%"))
    except ValueError:
        raise ValueError(f"max_drop {value!r} is not a number or a percentage (10%)") from None
    if amount < 0:
        raise ValueError("max_drop cannot be negative")
    return amount, percent


class StuckLimits(Strict):
    """When a PostgreSQL session counts as a stuck transaction (``db_stuck_transaction``)."""

    idle_in_transaction: Duration = Field(300.0, gt=0)
    blocking: Duration = Field(60.0, gt=0)


class Pitr(Strict):
    """Point-in-time recovery: where base backups go and where the server archives its WAL.
    Both are absolute paths on the machine Lazarus runs on (the server's archive_command names
    the same folder), readable by the OS user ``postgres`` that runs the side copies."""

    base_backups: str = Field(description="absolute folder of pg_basebackup copies")
    wal_archive: str = Field(description="absolute folder the server's archive_command fills")

    @field_validator("base_backups", "wal_archive")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError(f"{value!r} must be an absolute path")
        return value


class Database(Strict):
    """A database Lazarus watches, snapshots and restores (whole database, never single tables)."""

    name: Name
    kind: Literal["postgres", "sqlite"]
    dsn: str = Field(description="secret reference (env:ORDERS_DSN) or a libpq URI / sqlite path")
    host: Name | None = Field(None, description="inventory host it runs on (required there)")
    snapshots: DatabaseSnapshots
    check: str | None = Field(None, description="SQL returning one truthy value when data is sane")
    tables: list[str] = Field([], description="tables whose row counts are checked and reported")
    checks: list[DbCheck] = Field([], description="checks the watch runs (db_corrupt)")
    settle: Duration = Field(120.0, description="after a recovery, hold its host's alerts off")
    stuck: StuckLimits | None = Field(None, description="watch for db_stuck_transaction")
    pitr: Pitr | None = None

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, checks: list[DbCheck]) -> list[DbCheck]:
        _reject_duplicates([c.name for c in checks], "check")
        return checks

    probe: Probe | None = Field(None, description="default: postgres connects to dsn, SELECT 1")
    control: Control | None = Field(None, description="how it is restarted on its host")
    depends_on: list[Name] = []

    def liveness(self) -> Probe | None:
        """The probe the watch runs: the configured one, else ``SELECT 1`` over the DSN."""
        if self.probe is not None or self.kind != "postgres":
            return self.probe
        return Probe(postgres=self.dsn)

    def as_service(self) -> Service:
        """The database as one more watched instance: probed, restarted and diagnosed like a
        service, on its own host only."""
        return Service(
            name=self.name,
            probe=self.liveness() or Probe(command=["true"]),
            control=self.control or Control(unit=self.name),
            labels={"kind": "database"},
            depends_on=self.depends_on,
        )


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

    @model_validator(mode="after")
    def _graph_holds(self) -> Inventory:
        """Databases run on inventory hosts; ``depends_on`` names what exists, with no cycle."""
        hosts = {h.name for h in self.hosts}
        for i, db in enumerate(self.databases):
            if db.host is None:
                raise Located(
                    "missing required field 'host': the inventory host the database runs on",
                    ("databases", i),
                )
            if db.host not in hosts:
                raise Located(
                    f"database {db.name!r} names host {db.host!r}, which is not in inventory.hosts",
                    ("databases", i, "host"),
                )
            if db.name in {s.name for s in self.services}:
                raise Located(
                    f"{db.name!r} is both a service and a database", ("databases", i, "name")
                )
        known = {s.name for s in self.services} | {d.name for d in self.databases}
        for where, i, item in self._dependants():
            for j, dep in enumerate(item.depends_on):
                if dep not in known:
                    raise Located(
                        f"depends_on names {dep!r}, which is no service or database of the"
                        " inventory",
                        (where, i, "depends_on", j),
                    )
        needs = {item.name: item.depends_on for _, _, item in self._dependants()}
        for where, i, item in self._dependants():
            loop = _cycle_from(item.name, needs)
            if loop:
                raise Located(
                    f"depends_on forms a cycle: {' -> '.join(loop)}", (where, i, "depends_on")
                )
        return self

    def _dependants(self) -> list[tuple[str, int, Service | Database]]:
        return [
            *(("services", i, s) for i, s in enumerate(self.services)),
            *(("databases", i, d) for i, d in enumerate(self.databases)),
        ]

    def depended_on(self) -> set[str]:
        """The services and databases that something ``depends_on``."""
        return {d for _, _, item in self._dependants() for d in item.depends_on}

    def watched(self) -> list[Service]:
        """Every instance kind the watch probes: the services, then the databases as services."""
        return [*self.services, *(d.as_service() for d in self.databases if d.liveness())]

    def hosts_of(self, service: Service) -> list[Host]:
        """The hosts a service runs on (its label selector), or a database's own host."""
        db = self.database(service.name)
        if db is not None:
            return [h for h in self.hosts if h.name == db.host]
        return [
            h for h in self.hosts if all(h.labels.get(k) == v for k, v in service.hosts.items())
        ]

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def service(self, name: str) -> Service:
        """A service by name; a database counts, as the service it is to the watch."""
        for service in self.services:
            if service.name == name:
                return service
        db = self.database(name)
        if db is not None:
            return db.as_service()
        raise KeyError(name)

    def database(self, name: str) -> Database | None:
        return next((d for d in self.databases if d.name == name), None)


def _cycle_from(start: str, needs: dict[str, list[str]]) -> list[str]:
    """The first dependency cycle through ``start`` (``[a, b, a]``), or ``[]``."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for dep in needs.get(name, []):
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return []


class PrometheusSource(Strict):
    kind: Literal["prometheus"]
    url: str
    queries: dict[Name, str]
    timeout: Duration = Field(5.0, gt=0)


class SshMetricsSource(Strict):
    kind: Literal["ssh_metrics"]
    hosts: dict[str, str] = {}
    timeout: Duration = Field(
        5.0, gt=0, description="per host: reading /proc takes ms, so longer means hung"
    )


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


class PeerSettings(Strict):
    """Peer comparison (lazarus.detect.peers_cycle): the same series on the hosts of one service
    should agree; one that stays ``limit`` MADs from its group's median for ``for`` cycles in a
    row is reported once as ``<name>_peer_outlier``, unless the series' own detector already said
    that episode. Groups of fewer than 3 never fire."""

    enabled: bool = True
    limit: float = Field(5.0, gt=0, description="MADs from the peers' median that count as unlike")
    for_: int = Field(3, alias="for", ge=1, description="consecutive cycles before it fires")
    floor: float = Field(
        0.0, ge=0, description="smallest spread, in the series' unit, e.g. 1 for error counts"
    )


class AnomalySettings(Strict):
    """Statistical detection (lazarus.detect.ensemble) for series whose name matches ``series``.

    ``series`` is a glob; the first matching entry wins and unmatched series use the defaults,
    which need no tuning. Counts are in points of the series.
    """

    series: str = "*"
    span: int = Field(5000, ge=10, description="points of memory of the level statistics")
    smooth: int = Field(5, ge=1, description="points averaged to catch short shifts")
    season: Duration | None = Field(86400.0, description="cycle length (1d, 7d); null = none")
    warmup: int = Field(200, ge=0, description="points of a series before it may score")
    suppress: int = Field(2048, ge=32, description="look-back of the say-it-once rule")
    threshold: float = Field(0.025, ge=0.0, le=1.0, description="score that labels an anomaly")
    absent_after: int = Field(3, ge=1, description="cycles without a value before it is absent")
    peer: PeerSettings = Field(default_factory=PeerSettings)
    also: list[Literal["change_point", "rate_of_change", "mad", "esd"]] = Field(
        [], description="extra detectors beside the ensemble, each saying <series>_<name>"
    )


class ClockSettings(Strict):
    """Per-host clock offset and round trip, measured over SSH the NTP way (sources.clock)."""

    enabled: bool = False
    max_offset: Duration = Field(0.5, gt=0, description="|offset| past this is clock_skew")


class Detectors(Strict):
    probe_failures: int = Field(2, ge=1, description="failed probes in a row before service_down")
    source_failures: int = Field(
        3, ge=1, description="cycles a source fails in a row before source_down"
    )
    resolve_after: Duration = Field(
        600.0, gt=0, description="an incident without a probe resolves when quiet this long"
    )
    rules: list[ThresholdRule] = []
    anomaly: list[AnomalySettings] = []
    clock: ClockSettings = Field(default_factory=ClockSettings)


def _matchers_parse(matchers: list[str]) -> list[str]:
    for i, text in enumerate(matchers):
        try:
            parse_matchers(text)
        except ConfigError as exc:
            raise Located(exc.reason, (i,)) from None
    return matchers


Matchers = Annotated[list[str], AfterValidator(_matchers_parse)]


class RateLimit(Strict):
    """At most ``max`` messages to one receiver ``per`` period; the rest go to the fallback."""

    max: int = Field(ge=1)
    per: Duration = Field(gt=0)


class Receiver(Strict):
    name: Name
    urls: list[str] = Field(min_length=1)
    rate_limit: RateLimit | None = None


class Route(Strict):
    """A node of Alertmanager's routing tree; unset timing fields inherit the parent's."""

    receiver: str | None = None
    matchers: Matchers = []
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = []
    group_by: list[str] | None = Field(None, description="labels that split groups; ['...'] = all")
    group_wait: Duration | None = Field(None, description="first message of a new group (30s)")
    group_interval: Duration | None = Field(None, description="next message on change (5m)")
    repeat_interval: Duration | None = Field(None, description="repeat while firing (4h)")


class InhibitRule(Strict):
    """A firing source alert mutes target alerts that share the ``equal`` labels."""

    source_matchers: Matchers = Field(min_length=1)
    target_matchers: Matchers = Field(min_length=1)
    equal: list[str] = []


class MaintenanceWindow(Strict):
    """A recurring window (cron, UTC) that mutes what it matches and pauses its remediation."""

    name: Name
    schedule: str = Field(description="cron: minute hour day month weekday, e.g. '0 2 * * sun'")
    duration: Duration = Field(gt=0, le=7 * 86400)
    matchers: Matchers = Field([], description="empty = the whole fleet")
    pause_remediation: bool = True

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, schedule: str) -> str:
        try:
            parse_cron(schedule)
        except ConfigError as exc:
            raise ValueError(exc.reason) from None
        return schedule


class EscalationLevel(Strict):
    receiver: str
    after: Duration = Field(description="unacknowledged this long after the alert began")


class Escalation(Strict):
    """Who is paged next while an alert that matches stays unacknowledged."""

    matchers: Matchers = Field([], description="empty = every alert")
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(0, ge=0, description="pages of the last level after the first")
    repeat_interval: Duration = Field(3600.0, gt=0)


class Notify(Strict):
    receivers: list[Receiver] = []
    route: Route | None = None
    retries: int = Field(3, ge=0)
    retry_delay: Duration = 1.0
    timeout: Duration = Field(10.0, gt=0)
    inhibit_rules: list[InhibitRule] = []
    maintenance: list[MaintenanceWindow] = []
    escalation: list[Escalation] = []
    fallback: str | None = Field(None, description="receiver for what another could not take")
    send_resolved: bool = True
    silence_reminder: Duration = Field(900.0, description="warn this long before a silence ends")

    @field_validator("receivers")
    @classmethod
    def _unique_receivers(cls, receivers: list[Receiver]) -> list[Receiver]:
        _reject_duplicates([r.name for r in receivers], "receiver")
        return receivers

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Notify:
        if self.route is not None:
            if self.route.matchers:
                raise Located(
                    "the root route matches everything; it takes no matchers", ("route", "matchers")
                )
            _check_route_receivers(self.route, {r.name for r in self.receivers}, ("route",))
        names = {r.name for r in self.receivers}
        if self.fallback is not None and self.fallback not in names:
            raise Located(
                f"fallback {self.fallback!r} is not defined in notify.receivers", ("fallback",)
            )
        for i, policy in enumerate(self.escalation):
            for j, level in enumerate(policy.levels):
                if level.receiver not in names:
                    raise Located(
                        f"receiver {level.receiver!r} is not defined in notify.receivers",
                        ("escalation", i, "levels", j, "receiver"),
                    )
        return self


class Recovery(Strict):
    """Whether watch starts recovery at all; what recovery does is in the playbooks."""

    enabled: bool = True


class Watch(Strict):
    interval: Duration = Field(15.0, gt=0)
    heartbeat: str | None = Field(
        None, description="URL (or secret reference) pinged after every completed cycle"
    )
    dead_after: int = Field(
        3, ge=1, description="intervals without a completed cycle before the dead-man pages"
    )
    startup: Duration = Field(
        30.0,
        ge=0,
        description="a deployment's watch run's start-up (worker poll, new process, config"
        " load), allowed beside dead_after intervals before the dead-man automation pages",
    )


class State(Strict):
    path: str = ".lazarus/lazarus.db"
    url: str | None = Field(
        None,
        description="postgresql://… (or a secret reference to it): the store of many workers;"
        " when set, path is not used",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url is not None and not (is_reference(url) or is_url(url)):
            raise ValueError("state.url must be postgresql://… or a secret reference to it")
        return url


def _a_reference(value: str, info: ValidationInfo) -> str:
    """A field that holds a secret must name it (env:NAME, secret:NAME), never hold it."""
    if not is_reference(value):
        raise ValueError(
            f"the {info.field_name} must be a secret reference (env:NAME, secret:NAME)"
        )
    return value


class Links(Strict):
    """Signed one-click ack and silence links in messages, answered by `lazarus serve`."""

    key: str = Field(description="secret reference to the HMAC key that signs the links")
    url: str | None = Field(
        None, pattern=r"^https?://", description="how a browser reaches serve (default: listen)"
    )
    ttl: Duration = Field(43200.0, gt=0, description="a link works this long after it is sent")
    silence: Duration = Field(7200.0, gt=0, description="how long a silence link mutes")

    _key_is_reference = field_validator("key")(_a_reference)


class ServerSettings(Strict):
    """The HTTP endpoint of `lazarus serve` (alert intake, signed links); every route but a
    signed link needs the token."""

    listen: str = Field("127.0.0.1:9095", pattern=r"^[^\s:]+:\d{1,5}$", description="host:port")
    token: str = Field(description="secret reference (env:NAME, secret:NAME) to the bearer token")
    links: Links | None = None

    _token_is_reference = field_validator("token")(_a_reference)

    @model_validator(mode="after")
    def _links_reachable(self) -> ServerSettings:
        """A link to 0.0.0.0 reaches nobody: listening everywhere needs the public ``url``."""
        if self.links and self.links.url is None and self.address[0] in ("0.0.0.0", "::", "[::]"):
            raise Located(
                f"listen is {self.listen} (every address): say how a browser reaches lazarus "
                "serve, e.g. url: https://lazarus.example.com",
                ("links", "url"),
            )
        return self

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host, int(port)


class Prefect(Strict):
    ui_url: str | None = Field(None, description="base URL of the Prefect UI, for links")


class RunWindow(Strict):
    max: int = Field(3, ge=1)
    within: Duration = Field(3600.0, gt=0)


class ErrorRate(Strict):
    max: float = Field(0.5, ge=0.0, le=1.0)
    within: Duration = Field(3600.0, gt=0)
    min_runs: int = Field(4, ge=1)


class AllowedCommand(Strict):
    """``argv[0]`` exactly, and one anchored regex per following argument (none = no args)."""

    argv0: str
    args: list[str] = []

    @field_validator("args")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise Located(f"not a regular expression: {exc}", (i,)) from None
        return value

    def allows(self, argv: list[str]) -> bool:
        return (
            bool(argv)
            and argv[0] == self.argv0
            and len(argv) - 1 == len(self.args)
            and all(re.fullmatch(p, a) for p, a in zip(self.args, argv[1:], strict=True))
        )


class DiagnoseSettings(Strict):
    """Diagnosis beyond the shipped signatures: a classifier learnt from confirmed causes."""

    model: str | None = Field(None, description="a model from `lazarus diagnose train` (.npz)")


class PlaybookSettings(Strict):
    """Where playbooks live (lazarus.playbooks) and the safety limits around them."""

    dir: str = "playbooks"
    dry_run: bool = False
    fleet_cap: Annotated[int, Field(ge=1)] | str = Field(
        "10%", description="hosts (int) or percent of a service's hosts"
    )
    fleet_wait: Duration = Field(300.0, description="how long a run waits for a free slot")
    lease: Duration = Field(
        60.0, gt=0, description="a recover run silent this long is dead: its incident escalates"
    )
    timeout: Duration = Field(
        600.0,
        gt=0,
        description="an automatic recover run still going after this long stops at its next step"
        " or wait and escalates (the watch goes on beside it meanwhile)",
    )
    per_target: RunWindow = Field(default_factory=RunWindow)
    error_rate: ErrorRate = Field(default_factory=ErrorRate)
    allow_commands: list[AllowedCommand] = []
    clean_paths: list[str] = Field([], description="folders disk.clean may delete files from")
    out_of_band: list[str] = Field(
        [], description="argv of the out-of-band reboot; {host} and {address} are filled"
    )
    max_depth: int = Field(3, ge=1, description="nesting limit of run_playbook")

    @field_validator("fleet_cap")
    @classmethod
    def _cap(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?%", value.strip()):
            raise ValueError("fleet_cap is a number of hosts or a percentage like '10%'")
        if isinstance(value, str) and not 0 < float(value.strip()[:-1]) <= 100:
            raise ValueError("fleet_cap as a percentage is above 0% and at most 100%")
        return value

    @field_validator("out_of_band")
    @classmethod
    def _known_placeholders(cls, value: list[str]) -> list[str]:
        commandline.check_template(value, commandline.OUT_OF_BAND)
        return value

    def cap_for(self, fleet_size: int) -> int:
        """Hosts of a service (of ``fleet_size``) that may remediate at once; at least one."""
        if isinstance(self.fleet_cap, int):
            return max(1, self.fleet_cap)
        return max(1, int(fleet_size * float(self.fleet_cap.strip()[:-1]) / 100))


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|KiB|MiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1 << 20, "mib": 1 << 20}


def parse_size(value: Any) -> int:
    """``256KB``, ``1MB`` or a bare number of bytes -> bytes (KB = 1024 bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size (use 4096, 256KB, 1MB)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]


Size = Annotated[int, BeforeValidator(parse_size)]


class LogFile(Strict):
    """One log file of a service, tailed on every host of that service."""

    service: Name
    path: str = Field(description="path on each host; {host} is filled with the host name")
    format: str = Field("<Content>", description="header format, e.g. '<Level> <Content>'")
    local: bool = Field(False, description="read on the Lazarus machine, not over SSH")
    start: Literal["end", "beginning"] = Field(
        "end", description="where a file seen for the first time is read from"
    )

    @field_validator("format")
    @classmethod
    def _has_content(cls, value: str) -> str:
        if "<Content>" not in value:
            raise ValueError("a log format needs a <Content> field")
        return value


class LogJournal(Strict):
    """One systemd unit's journal, read with journalctl on every host of the service. The SSH
    user must be allowed to read it (group ``systemd-journal`` or ``adm``)."""

    service: Name
    unit: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9@:._\\-]*$", max_length=256)
    directory: str | None = Field(
        None, description="journal files to read (journalctl --directory); default the system's"
    )
    start: Literal["end", "beginning"] = Field(
        "end", description="where a journal seen for the first time is read from"
    )
    lines: int = Field(1000, ge=1, le=100_000, description="entries read per cycle at most")


class ErrorSpike(Strict):
    """How far an error template's rate must rise to be a ``log_error_spike``: the detection
    ensemble (``detectors.anomaly`` entries matching ``log_error_rate``) must call the bucket
    unusual, and its count must clear both bounds below (counts are per bucket, a minute)."""

    min_count: int = Field(10, ge=1, description="lines of the template in the bucket, at least")
    ratio: float = Field(3.0, ge=1.0, description="times its mean over the hour before, at least")


class LogSettings(Strict):
    """Service logs tailed every watch cycle (lazarus.logcollect); none configured = none read."""

    files: list[LogFile] = []
    journals: list[LogJournal] = []
    budget: Size = Field(
        256 * 1024, ge=1024, le=64 << 20, description="bytes read per file (journal) per cycle"
    )
    max_line: Size = Field(
        4096, ge=64, le=4096, description="longer lines are cut and counted (the miner's limit)"
    )
    warmup: Duration = Field(300.0, description="new templates count only after this long")
    spike: ErrorSpike = Field(default_factory=ErrorSpike)

    @model_validator(mode="after")
    def _line_fits_budget(self) -> LogSettings:
        if self.max_line >= self.budget:
            raise ValueError("max_line must be smaller than budget")
        return self


class Config(Strict):
    inventory: Inventory
    sources: list[Source] = []
    detectors: Detectors = Field(default_factory=Detectors)
    notify: Notify = Field(default_factory=Notify)
    recovery: Recovery = Field(default_factory=Recovery)
    watch: Watch = Field(default_factory=Watch)
    state: State = Field(default_factory=State)
    server: ServerSettings | None = None
    prefect: Prefect = Field(default_factory=Prefect)
    playbooks: PlaybookSettings = Field(default_factory=PlaybookSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    diagnose: DiagnoseSettings = Field(default_factory=DiagnoseSettings)
    base_dir: Path = Field(Path("."), exclude=True)
    file: Path | None = Field(None, exclude=True)  # the file it came from: messages quote it

    def path(self, value: str) -> Path:
        """A path from the config, relative ones taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret_refs(self) -> list[tuple[str, str]]:
        """(field path, reference) of every secret reference the config holds."""
        refs = [("inventory.ssh.key", self.inventory.ssh.key)]
        if self.inventory.ssh.passphrase:
            refs.append(("inventory.ssh.passphrase", self.inventory.ssh.passphrase))
        if self.watch.heartbeat:
            refs.append(("watch.heartbeat", self.watch.heartbeat))
        for i, receiver in enumerate(self.notify.receivers):
            refs += [(f"notify.receivers[{i}].urls[{j}]", u) for j, u in enumerate(receiver.urls)]
        refs += [
            (f"inventory.databases[{i}].dsn", d.dsn) for i, d in enumerate(self.inventory.databases)
        ]
        if self.server is not None:
            refs.append(("server.token", self.server.token))
            if self.server.links is not None:
                refs.append(("server.links.key", self.server.links.key))
        if self.state.url is not None:
            refs.append(("state.url", self.state.url))
        for kind, items in (
            ("services", self.inventory.services),
            ("databases", self.inventory.databases),
        ):
            refs += [
                (f"inventory.{kind}[{i}].probe.postgres", item.probe.postgres)
                for i, item in enumerate(items)
                if item.probe is not None and item.probe.postgres
            ]
        return [(field, ref) for field, ref in refs if is_reference(ref)]


def _reject_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise Located(f"duplicate {what} name {name!r}", (index, "name"))
        seen.add(name)


def _check_route_receivers(route: Route, names: set[str], loc: tuple[str | int, ...]) -> None:
    if route.receiver is not None and route.receiver not in names:
        raise Located(
            f"receiver {route.receiver!r} is not defined in notify.receivers", (*loc, "receiver")
        )
    for i, child in enumerate(route.routes):
        _check_route_receivers(child, names, (*loc, "routes", i))


# --- loading ----------------------------------------------------------------------------------

_SOURCE_TAGS = frozenset({"prometheus", "ssh_metrics"})


def field_error(path: Path, lines: Lines, field: str, message: str) -> ConfigError:
    """A ConfigError for ``field`` (``a.b[0].c``), on the line of ``path`` that sets it."""
    loc = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", field) if p)
    return ConfigError(message, path=str(path), line=lines.find(loc), field=field)


def load_config(path: str | Path, *, check_secrets: bool = False) -> Config:
    """Read and validate a config file; raise ConfigErrorGroup listing every problem found."""
    path = Path(path)
    data, lines = read_yaml(path)
    config = validate(
        Config,
        {**data, "base_dir": path.resolve().parent, "file": path.resolve()},
        lines,
        path,
        tags=_SOURCE_TAGS,
    )
    if check_secrets:
        problems = []
        for field, ref in config.secret_refs():
            try:
                resolve(ref)
            except SecretError as exc:
                problems.append(field_error(path, lines, field, str(exc)))
        if problems:
            raise ConfigErrorGroup(problems)
    return config
