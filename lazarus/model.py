"""The domain's small value types, shared by every stage of the loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class IncidentState(StrEnum):
    """Lifecycle: open -> notified -> remediating -> resolved | escalated."""

    OPEN = "open"
    NOTIFIED = "notified"
    REMEDIATING = "remediating"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


ACTIVE_STATES = (
    IncidentState.OPEN,
    IncidentState.NOTIFIED,
    IncidentState.REMEDIATING,
    IncidentState.ESCALATED,
)


def target_name(service: str, host: str) -> str:
    """One service instance, as it appears in fingerprints and messages: ``api@web-1``."""
    return f"{service}@{host}"


@dataclass(frozen=True)
class Observation:
    """One probe of one service instance in one watch cycle."""

    host: str
    service: str
    ok: bool
    detail: str
    at: float
    latency_s: float | None = None

    @property
    def target(self) -> str:
        return target_name(self.service, self.host)


@dataclass(frozen=True)
class Sample:
    """One value of one named series (a Prometheus result, an SSH metric)."""

    series: str
    labels: tuple[tuple[str, str], ...]
    value: float
    at: float

    def label(self, name: str, default: str = "") -> str:
        return dict(self.labels).get(name, default)


@dataclass(frozen=True)
class Anomaly:
    """A detector's verdict that a target shows a symptom now."""

    host: str
    service: str
    symptom: str
    severity: str
    summary: str
    at: float
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return target_name(self.service, self.host) if self.service else self.host

    @property
    def fingerprint(self) -> str:
        return f"{self.target}/{self.symptom}"


@dataclass(frozen=True)
class Incident:
    """One symptom on one target, from detection until it is resolved or escalated."""

    id: int
    fingerprint: str
    host: str
    service: str
    symptom: str
    severity: str
    state: IncidentState
    summary: str
    labels: dict[str, str]
    detected_at: float
    notified_at: float | None = None
    action_at: float | None = None
    verified_at: float | None = None
    closed_at: float | None = None
    reason: str = ""
    flow_run_url: str = ""

    @property
    def target(self) -> str:
        return target_name(self.service, self.host) if self.service else self.host

    def facts(self) -> dict[str, str]:
        """Labels a notification route can match on."""
        return {
            **self.labels,
            "host": self.host,
            "service": self.service,
            "symptom": self.symptom,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class CommandResult:
    """What a remote command did; output is capped, and ``truncated`` says so."""

    host: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
