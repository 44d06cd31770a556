"""Prefect events for incident lifecycle changes, so automations and the UI can react to them.

Event names: ``lazarus.incident.opened|resolved|escalated``, ``lazarus.incident.interrupted``
(a recover run died at a step safe to repeat: the automation starts the run that takes over),
and a person's steps
``lazarus.incident.acknowledged|approved|rejected`` (who, in the related ``lazarus.person.<name>``
resource and the payload); resource id ``lazarus.target.<host>.<service>``; the incident id rides
along as a label and in the payload.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from lazarus.model import Anomaly, Incident

# interrupted: a recover run died mid-way at a step safe to repeat; another run takes over.
KINDS = (
    "opened",
    "resolved",
    "escalated",
    "acknowledged",
    "approved",
    "rejected",
    "interrupted",
)


def resource_id(incident: Incident) -> str:
    return f"lazarus.target.{incident.host}.{incident.service}"


def emit_incident(incident: Incident, kind: str, *, by: str = "", comment: str = "") -> None:
    """Emit one lifecycle event; ``kind`` is one of KINDS, ``by`` the person who took a step."""
    if kind not in KINDS:
        raise ValueError(f"unknown incident event {kind!r}")
    person = [{"prefect.resource.id": f"lazarus.person.{by}", "prefect.resource.role": "actor"}]
    emit_event(
        event=f"lazarus.incident.{kind}",
        resource={
            "prefect.resource.id": resource_id(incident),
            "prefect.resource.name": f"{incident.host}/{incident.service}",
            "lazarus.incident.id": str(incident.id),
        },
        related=person if by else None,
        payload={
            "incident": incident.id,
            "symptom": incident.symptom,
            "severity": incident.severity,
            "summary": incident.summary,
            "state": str(incident.state),
            **({"by": by, "comment": comment} if by else {}),
        },
    )


def emit_all(incidents: Iterable[Incident], kind: str) -> int:
    """Emit ``kind`` for each incident; returns how many were sent."""
    count = 0
    for incident in incidents:
        emit_incident(incident, kind)
        count += 1
    return count


def summary_markdown(
    counts: dict[str, int], anomalies: list[Anomaly], shard: int, shards: int
) -> str:
    """The watch run's detection summary: counts, then one row per anomaly."""
    lines = [
        f"# Watch cycle (shard {shard + 1} of {shards})",
        "",
        "| measure | count |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    if anomalies:
        lines += ["", "| target | symptom | severity | summary |", "|---|---|---|---|"]
        lines += [
            f"| {a.host}/{a.service} | {a.symptom} | {a.severity} | {a.summary.replace('|', '/')} |"
            for a in anomalies
        ]
    return "\n".join(lines)


def publish_summary(
    counts: dict[str, int], anomalies: list[Anomaly], shard: int, shards: int
) -> None:
    """Attach the summary to the flow run as the ``detection-summary`` artifact."""
    create_markdown_artifact(
        key="detection-summary",
        markdown=summary_markdown(counts, anomalies, shard, shards),
        description="What this watch cycle saw",
    )
