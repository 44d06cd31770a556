"""What the on-call reads: an incident rendered as a short title and a markdown body.

Built only from the Incident (never from config or secrets), so a message can be sent,
stored as an artifact or shown in the UI without leaking anything. ``short`` squeezes it
into one SMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from lazarus.model import Incident

Event = Literal["opened", "resolved", "escalated", "remediating"]
SMS_LIMIT = 160


@dataclass(frozen=True)
class Message:
    """A rendered notification; ``summary`` is the one line an SMS keeps of the body."""

    title: str
    body: str
    summary: str = ""


def render(
    incident: Incident,
    event: Event,
    *,
    flow_run_url: str = "",
    actions: Sequence[str] = (),
    diagnosis: str = "",
) -> Message:
    """The message for one step of an incident's life (``flow_run_url`` defaults to its own)."""
    severity = incident.severity.upper()
    title = f"[{severity}] {incident.symptom} {incident.target} — {event}"
    facts = [
        f"**{severity}** `{incident.symptom}` on **{incident.target}** — {event}",
        "",
        f"- **Summary:** {incident.summary}",
        f"- **Detected:** {_utc(incident.detected_at)}",
        f"- **State:** {incident.state}",
    ]
    if event == "resolved" and incident.closed_at is not None:
        minutes = (incident.closed_at - incident.detected_at) / 60
        facts.append(f"- **Resolved:** {_utc(incident.closed_at)} (after {minutes:.1f} min)")
    if diagnosis:
        facts.append(f"- **Diagnosis:** {diagnosis}")
    if event == "escalated":
        facts.append(f"- **Reason:** {incident.reason or 'not recorded'}")
    if actions:
        facts += ["- **Actions taken:**", *(f"  - {action}" for action in actions)]
    link = flow_run_url or incident.flow_run_url
    if link:
        facts.append(f"- **Flow run:** [{link}]({link})")
    return Message(title, "\n".join(facts), incident.summary)


def short(message: Message) -> str:
    """One SMS (<= 160 characters, plain ASCII dashes so the GSM alphabet keeps 160)."""
    parts = (message.title, message.summary) if message.summary else (message.title,)
    text = " ".join(": ".join(parts).split()).replace("—", "-")
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 3].rstrip() + "..."


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
